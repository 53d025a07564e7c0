//! Which account and environment a command uses, and the SDK client for it.
//!
//! The session is kept by the SDK's `FileStore` in the user's cache
//! directory; the profile only names the account and environment. The
//! password is read from `DYNATA_PASSWORD` or a prompt and never written.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dynata_sdk::store::{
    FileStore, LeaseOwner, SharingPolicy, StoreError, StoreKey, StoredSession, TokenStore,
};
use dynata_sdk::{AccessToken, Client, Credentials, Environment};

use crate::dirs;
use crate::failure::Failure;
use crate::profile::{self, Profile};

/// Everything a command needs to reach Dynata as the profile's account.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) profile_name: String,
    pub(crate) profile: Profile,
    /// How the environment was given (`production`, `uat`, a URL).
    pub(crate) environment_name: String,
    pub(crate) environment: Environment,
    pub(crate) base_url: String,
    /// Whether the environment is the profile's (the shell named none).
    environment_from_profile: bool,
    store: FileStore,
}

/// `production`, `uat`, or a base URL; `given_by` names where it came
/// from, for the error.
fn parse_environment(text: &str, given_by: &str) -> Result<Environment, Failure> {
    match text.trim().to_ascii_lowercase().as_str() {
        "production" | "prod" => Ok(Environment::Production),
        "uat" => Ok(Environment::Uat),
        _ => Environment::custom(text.trim()).map_err(|e| {
            Failure::usage(format!(
                "{given_by} takes production, uat or a base URL: {e}"
            ))
        }),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The password from `DYNATA_PASSWORD`, if set.
pub(crate) fn password_from_env() -> Option<String> {
    env_var("DYNATA_PASSWORD")
}

impl Context {
    /// The profile `profile_name`, its environment overridden by `--env` (or
    /// `DYNATA_ENV`), then `DYNATA_BASE_URL`; without any, production.
    ///
    /// The shell's variables rank above the profile, for the environment as
    /// for the account (`DYNATA_USERNAME`): a shell set up for one
    /// environment sends its `DYNATA_PASSWORD` to that one, never to the
    /// profile's.
    pub(crate) fn new(profile_name: &str, env_flag: Option<&str>) -> Result<Self, Failure> {
        Self::with_profile(profile_name, profile::load(profile_name)?, env_flag)
    }

    /// As [`Context::new`], for `dynata login`: when the environment is
    /// given (`--env`, `DYNATA_ENV`, `DYNATA_BASE_URL`), a profile file that
    /// is not valid is replaced. Without, it is refused: the environment it
    /// named is unknown, and the password must not go to another one.
    pub(crate) fn for_login(profile_name: &str, env_flag: Option<&str>) -> Result<Self, Failure> {
        let profile = if env_flag.is_some() || env_var("DYNATA_BASE_URL").is_some() {
            profile::load_replacing_invalid(profile_name)?
        } else {
            profile::load(profile_name)?
        };
        Self::with_profile(profile_name, profile, env_flag)
    }

    fn with_profile(
        profile_name: &str,
        profile: Profile,
        env_flag: Option<&str>,
    ) -> Result<Self, Failure> {
        // Where the environment comes from, named as the user gave it, so
        // that a bad one is fixed where it was given.
        let profile_environment = format!("the environment of profile {profile_name}");
        let (environment_name, given_by, environment_from_profile) =
            match (env_flag, env_var("DYNATA_BASE_URL"), &profile.environment) {
                (Some(flag), _, _) => (flag.to_owned(), "--env (or DYNATA_ENV)", false),
                (None, Some(base_url), _) => (base_url, "DYNATA_BASE_URL", false),
                (None, None, Some(named)) => (named.clone(), profile_environment.as_str(), true),
                (None, None, None) => ("production".to_owned(), "--env", false),
            };
        let environment = parse_environment(&environment_name, given_by)?;
        let base_url = environment.base_url()?;
        let cache = dirs::cache_dir().ok_or_else(|| {
            Failure::usage("no cache directory: set HOME (or XDG_CACHE_HOME, LOCALAPPDATA)")
        })?;
        Ok(Context {
            profile_name: profile_name.to_owned(),
            profile,
            environment_name,
            environment,
            base_url,
            environment_from_profile,
            // The SDK's FileStore::in_cache_dir() directory, found with the
            // same lookup: programs using the SDK share the session.
            store: FileStore::new(cache.join("dynata").join("sessions")),
        })
    }

    fn client_id() -> String {
        env_var("DYNATA_CLIENT_ID").unwrap_or_else(|| dynata_sdk::DEFAULT_CLIENT_ID.to_owned())
    }

    /// The account of later commands: `DYNATA_USERNAME`, else the profile's.
    pub(crate) fn username(&self) -> Result<String, Failure> {
        env_var("DYNATA_USERNAME")
            .or_else(|| self.profile.username.clone())
            .ok_or_else(|| self.not_logged_in())
    }

    /// `DYNATA_PASSWORD` goes to the profile's environment only for the
    /// profile's own account, and only as its own account's (the shell's
    /// `DYNATA_USERNAME`, when set, is whose password it is). A shell that
    /// names another account but no environment is set up for the SDK's
    /// default, production: its password must not go to wherever this
    /// profile logged in (UAT, a gateway's URL).
    fn check_shell_password_goes_here(&self, username: &str) -> Result<(), Failure> {
        if !self.environment_from_profile {
            return Ok(());
        }
        let profiles = self.profile.username.as_deref();
        let where_to = format!(
            "the environment, {}, is profile {}'s: set DYNATA_ENV or DYNATA_BASE_URL (or give \
             --env) to say where the password goes (nothing was sent)",
            self.base_url, self.profile_name
        );
        // The shell's password is its account's: `DYNATA_USERNAME`'s if set
        // (`dynata login -u` may name another).
        match env_var("DYNATA_USERNAME") {
            Some(shell) if shell != username => Err(Failure::usage(format!(
                "DYNATA_PASSWORD is set for {shell} (DYNATA_USERNAME), not for {username}; {where_to}"
            ))),
            _ if profiles != Some(username) => Err(Failure::usage(format!(
                "DYNATA_PASSWORD is set for {username}, but profile {} is not logged in as \
                 {username}; {where_to}",
                self.profile_name
            ))),
            _ => Ok(()),
        }
    }

    fn not_logged_in(&self) -> Failure {
        Failure::refused(format!(
            "not logged in to {} (profile {}): run `dynata login`",
            self.base_url, self.profile_name
        ))
    }

    fn key(&self, username: &str) -> StoreKey {
        StoreKey::for_account(&self.base_url, &Self::client_id(), username)
    }

    fn build(&self, credentials: Credentials) -> Result<Client, Failure> {
        self.build_on(credentials, self.store.clone())
    }

    /// A client of the profile's environment whose session is in `store`.
    fn build_on(&self, credentials: Credentials, store: FileStore) -> Result<Client, Failure> {
        Ok(Client::builder()
            .credentials(credentials.with_client_id(Self::client_id()))
            .environment(self.environment.clone())
            .token_store(Arc::new(store))
            .build()?)
    }

    /// The stored session of `username`, if any (unreadable counts as none).
    async fn stored(&self, username: &str) -> Result<Option<StoredSession>, Failure> {
        match self.store.load(&self.key(username)).await {
            Ok(session) => Ok(session),
            // Neither expired nor removed: a local file to fix, named.
            Err(e @ StoreError::Insecure { .. }) => Err(Failure::usage(format!(
                "{e}; run `dynata login` (it revokes that session and stores a new one) or `dynata logout`"
            ))),
            Err(e) if e.is_unusable_content() => Ok(None),
            Err(e) => Err(Failure::refused(format!(
                "cannot read the stored session: {e}"
            ))),
        }
    }

    /// A client for the profile's account that uses the stored session:
    /// with `DYNATA_PASSWORD` it logs in again when it must; without, a
    /// session whose refresh token has expired is "run dynata login", checked
    /// before anything is sent, so no wrong password reaches Dynata.
    pub(crate) async fn client(&self) -> Result<SessionClient, Failure> {
        let username = self.username()?;
        let key = self.key(&username);
        if let Some(password) = password_from_env() {
            self.check_shell_password_goes_here(&username)?;
            return Ok(SessionClient {
                client: self.build(Credentials::new(username, password))?,
                has_password: true,
                context_hint: self.not_logged_in().message,
                store: self.store.clone(),
                key,
            });
        }
        let stored = self.stored(&username).await?;
        let usable = stored.as_ref().is_some_and(refresh_usable);
        if !usable {
            return Err(Failure::refused(format!(
                "no valid session for {username} at {} (profile {}): it expired or was removed; \
                 run `dynata login`",
                self.base_url, self.profile_name
            )));
        }
        Ok(SessionClient {
            client: self.build(Credentials::without_password(username))?,
            has_password: false,
            context_hint: self.not_logged_in().message,
            store: self.store.clone(),
            key,
        })
    }

    /// `dynata login`: a fresh login with the password, its session saved
    /// in the store, the username and environment in the profile.
    pub(crate) async fn login(
        &mut self,
        username: String,
        password: String,
    ) -> Result<(), Failure> {
        let key = self.key(&username);
        self.sweep_scratch_stores(&username).await;
        // A refusal the store remembers (a mistyped password, an account
        // locked until a minute ago) holds back automatic retries; a person
        // typing the password again is one deliberate try.
        let _ = self.store.remove_rejected_login(&key).await;
        // The login happens on a scratch store, so that it proves the
        // password (a stored session would be adopted instead), and the
        // stored session stays as it is until the new one replaces it: a
        // mistyped password, a failure or an interruption logs nobody out.
        let (scratch, scratch_store) = self.scratch(SCRATCH_PREFIXES[0])?;
        let client = self.build_on(
            Credentials::new(username.clone(), password),
            scratch_store.clone(),
        )?;
        client.access_token().await?;
        let new = match scratch_store.load(&key).await {
            Ok(Some(session)) => session,
            Ok(None) => {
                return Err(Failure::refused(
                    "logged in, but the SDK wrote no session to keep",
                ));
            }
            Err(e) => {
                return Err(Failure::refused(format!(
                    "cannot read the new session: {e}"
                )));
            }
        };
        // Read just before it is replaced: another `dynata login` may have
        // stored a session since this one started.
        let (replaced, saved) = Self::holding_lease(&self.store, &key, async {
            let replaced = self.stored_making_private(&key).await.ok().flatten();
            (
                replaced,
                self.store.save(&key, &new, SystemTime::now()).await,
            )
        })
        .await;
        if let Err(e) = saved {
            // Held by nobody otherwise.
            let _ = client.logout().await;
            return Err(Failure::refused(format!(
                "logged in, but the session could not be kept in {} ({e}); it was revoked",
                self.store.dir().display()
            )));
        }
        drop((client, scratch));
        // The session replaced would otherwise stay valid at Dynata until its
        // refresh token expires, held by nobody.
        if let Some(replaced) = replaced
            && replaced.refresh_token != new.refresh_token
            && refresh_usable(&replaced)
        {
            let _ = self.revoke_replaced(&username, replaced).await;
        }
        self.profile.username = Some(username);
        self.profile.environment = Some(self.environment_name.clone());
        profile::save(&self.profile_name, &self.profile)
    }

    /// Runs `work` holding `store`'s renewal lease of `key`, as every save of
    /// the SDK's protocol does, for each of the command line's own steps
    /// that looks at the stored session and then writes or removes it (a
    /// login's save, a logout's put-back or removal, an expired session's
    /// removal): a renewal that found the stored session refused takes it
    /// out under that lease, and must not take out a login saved between its
    /// look and its removal; nor may a logout put an old session back over a
    /// login's, or remove the login's for the expired one it looked at.
    /// Another process's lease is waited for as the SDK waits (at most
    /// [`SharingPolicy::lease_wait`]; a dead holder's runs out within its
    /// time to live); a store that fails, or a lease that outlives that
    /// wait, leaves `work` to run without it.
    async fn holding_lease<T>(
        store: &FileStore,
        key: &StoreKey,
        work: impl Future<Output = T>,
    ) -> T {
        let policy = SharingPolicy::default();
        let owner = LeaseOwner::random();
        let started = std::time::Instant::now();
        let give_up = started + policy.lease_wait;
        let mut said = false;
        let held = loop {
            let acquired = store
                .try_acquire_lease(key, &owner, policy.lease_ttl, SystemTime::now())
                .await;
            match acquired {
                Ok(true) => break true,
                Ok(false) if std::time::Instant::now() < give_up => {
                    // Said once, if the wait is more than a moment.
                    if started.elapsed() > Duration::from_millis(250) && !said {
                        said = true;
                        crate::output::noteln!(
                            "Waiting for another `dynata` (or program) using this session's lease…"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(false) | Err(_) => break false,
            }
        };
        let outcome = work.await;
        if held {
            let _ = store.release_lease(key, &owner).await;
        }
        outcome
    }

    /// A token store of its own, in a 0700 directory beside the sessions
    /// that is removed when the first value is dropped: a client works on it
    /// without touching the stored session.
    fn scratch(&self, prefix: &str) -> Result<(tempfile::TempDir, FileStore), Failure> {
        let dir = self.store.dir();
        private_dir(dir)
            .and_then(|()| tempfile::Builder::new().prefix(prefix).tempdir_in(dir))
            .map(|scratch| {
                let store = FileStore::new(scratch.path());
                (scratch, store)
            })
            .map_err(|e| Failure::io(&format!("use the session directory {}", dir.display()), &e))
    }

    /// Scratch stores that a `dynata` killed mid-login or mid-revocation left
    /// behind: the session of `username` in each is revoked, and the
    /// directory removed once nothing live is left in it. Only those
    /// untouched for [`SCRATCH_MAX_AGE`]: a younger one may be another
    /// `dynata`'s, at work. Another account's is left to that account's
    /// next run.
    async fn sweep_scratch_stores(&self, username: &str) {
        let Ok(entries) = std::fs::read_dir(self.store.dir()) else {
            return;
        };
        let key = self.key(username);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Not followed: `DirEntry::metadata` reads a symlink itself.
            let Some(modified) = entry
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_dir)
                .and_then(|m| m.modified().ok())
            else {
                continue;
            };
            let stale = modified.elapsed().is_ok_and(|age| age > SCRATCH_MAX_AGE);
            if !stale || !SCRATCH_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let path = entry.path();
            let store = FileStore::new(&path);
            let done = match load_making_private(&store, &key).await {
                // A copy of the stored session itself (a `dynata logout`
                // killed after setting it aside, before the SDK took it out
                // of the store): not left behind, but the session every
                // process of this account uses. Revoking it here would log
                // them out, on a login that may yet fail.
                Ok(Some(copy)) => match self.is_stored(&key, &copy).await {
                    Some(true) => true,
                    Some(false) => self.revoke_left_behind(username, &store, copy).await,
                    // The store cannot be read: no telling the live session
                    // from one left behind; the next run looks again.
                    None => false,
                },
                // Nothing of this account: removed unless another account's
                // session is there (a lease or an unfinished write is not).
                Ok(None) => !holds_a_session(&path),
                Err(_) => false,
            };
            if done {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                // Still left behind, not at work: the next run tries again.
                let _ = std::fs::File::open(&path).and_then(|dir| dir.set_modified(modified));
            }
        }
    }

    /// Whether the store holds `session` (the same refresh token) for `key`;
    /// `None` when the store cannot be read.
    async fn is_stored(&self, key: &StoreKey, session: &StoredSession) -> Option<bool> {
        match self.store.load(key).await {
            Ok(stored) => {
                Some(stored.is_some_and(|stored| stored.refresh_token == session.refresh_token))
            }
            Err(_) => None,
        }
    }

    /// Revokes `copy`, a session a killed `dynata` left in the scratch
    /// `store`, which the stored session does not hold (another refresh
    /// token); whether it is done. Its access token is not used: that copy
    /// may be the stored session as it was before a renewal (a `dynata
    /// logout` killed while a service renewed it), whose access token is
    /// still good and would revoke the live session. Its refresh token goes
    /// first: one a renewal has spent is refused with `invalid_grant`, and
    /// nothing is revoked. (Where refresh tokens are reusable, as
    /// Keycloak's default allows, nothing local tells the two apart.)
    async fn revoke_left_behind(
        &self,
        username: &str,
        store: &FileStore,
        copy: StoredSession,
    ) -> bool {
        let refresh_first = StoredSession {
            access_expires_at: copy.issued_at,
            ..copy
        };
        let key = self.key(username);
        if store
            .save(&key, &refresh_first, SystemTime::now())
            .await
            .is_err()
        {
            return false;
        }
        self.revoke_stored(username, store).await.is_ok()
    }

    /// Revokes a session `dynata login` replaced, through a scratch store.
    /// Should Dynata not take it, the scratch store is kept, for the sweep
    /// of a later run to try again.
    async fn revoke_replaced(
        &self,
        username: &str,
        session: StoredSession,
    ) -> Result<Revoked, Failure> {
        let (scratch, store) = self.scratch(SCRATCH_PREFIXES[1])?;
        store
            .save(&self.key(username), &session, SystemTime::now())
            .await
            .map_err(|e| Failure::refused(format!("cannot stage the session to revoke: {e}")))?;
        let revoked = self.revoke_stored(username, &store).await;
        if revoked.is_err() {
            let _ = scratch.keep();
        }
        revoked
    }

    /// Revokes the session of `username` that `store` holds, and takes it
    /// out of `store` (a session that stays there, revoked, is an error that
    /// names its file); a session Dynata no longer honours is as good as
    /// revoked, and so is one whose revocation Dynata refuses with
    /// `invalid_grant` (it had already ended). Should Dynata not take the
    /// revocation otherwise (a gateway's refusal, no answer, a `5xx`), the
    /// session stays in `store` (as refreshed on the way, if it was), to try
    /// again. Either
    /// way, these steps leave alone a session another `dynata` stored there
    /// meanwhile; the SDK's logout itself, though, takes out and revokes
    /// whatever the store holds when it runs (a `dynata login` finishing at
    /// that moment is logged out with it).
    async fn revoke_stored(&self, username: &str, store: &FileStore) -> Result<Revoked, Failure> {
        let key = self.key(username);
        let client = self.build_on(Credentials::without_password(username), store.clone())?;
        // Adopts the stored session, or refreshes it (and stores the new
        // pair), so that its logout revokes what is stored now.
        match client.access_token().await {
            Ok(_) => {}
            // The refresh refused without Dynata's `invalid_grant` (a
            // gateway's `401` or `403`, bare or with its `{"message": …}`;
            // `invalid_client`): not known to have ended, and left in the
            // store. (Without a password nothing else is sent here.)
            Err(
                error @ (dynata_sdk::Error::CredentialsRejected { .. }
                | dynata_sdk::Error::Api {
                    status: 401 | 403, ..
                }),
            ) => {
                return Err(refresh_refused(&error));
            }
            Err(dynata_sdk::Error::LoginRequired) => {
                // What no session can be read from, or an expired one, has
                // nothing left to revoke: taken out, under the lease.
                let ended = Self::holding_lease(store, &key, async {
                    let after = store.load(&key).await;
                    match renewal_refused(&after) {
                        Renewal::Ended => Ok(true),
                        Renewal::EndedLeavingDead => self
                            .remove_ended(store, &key, Revoked::AlreadyEnded)
                            .await
                            .map(|()| true),
                        Renewal::NotDone => Ok(false),
                    }
                })
                .await?;
                if !ended {
                    return Err(not_renewed(store, "to revoke it"));
                }
                return Ok(Revoked::AlreadyEnded);
            }
            Err(e) => return Err(e.into()),
        }
        let revoking = store.load(&key).await.ok().flatten();
        // The SDK takes the session out of `store` before revoking it, which
        // can take minutes: a copy stays aside until Dynata has answered, so
        // that a `dynata` killed meanwhile leaves it for a later sweep.
        let aside = match &revoking {
            Some(session) => self.set_aside(&key, session).await,
            None => None,
        };
        // Dynata's `invalid_grant`: the session had already ended, and the
        // SDK, taking the refusal as final, keeps nothing to revoke again.
        // Put back, it would be refused the same way for ever.
        let outcome = match client.logout().await {
            Ok(()) => Ok(Revoked::Now),
            Err(error) if revocation_found_it_ended(&error) => Ok(Revoked::AlreadyEnded),
            Err(error) => Err(error),
        };
        let same = |a: &StoredSession, b: &StoredSession| a.refresh_token == b.refresh_token;
        // Under the lease, as a login saves: what is stored now is looked at
        // and then removed or put back, with no login landing in between.
        let (result, keep_aside) = Self::holding_lease(store, &key, async {
            let now_stored = store.load(&key).await.ok().flatten();
            match (outcome, revoking, now_stored) {
                (Ok(done), Some(revoked), Some(stored)) if same(&revoked, &stored) => {
                    let removed = self.remove_ended(store, &key, done).await;
                    (removed.map(|()| done), false)
                }
                (Ok(done), _, _) => (Ok(done), false),
                (Err(e), Some(revoking), None) => {
                    let put_back = store.save(&key, &revoking, SystemTime::now()).await;
                    (Err(e.into()), put_back.is_err())
                }
                // Another login took its place: the copy aside is for the sweep
                // of a later run to revoke.
                (Err(e), Some(revoking), Some(stored)) if !same(&revoking, &stored) => {
                    (Err(e.into()), true)
                }
                (Err(e), _, _) => (Err(e.into()), false),
            }
        })
        .await;
        if let Some(aside) = aside
            && !keep_aside
        {
            let _ = std::fs::remove_dir_all(aside);
        }
        result
    }

    /// Takes the session of `key` out of `store` once it is `revoked`: one
    /// left on this machine (a read-only sessions directory) must not be
    /// reported gone, so its removal's failure is the command's.
    async fn remove_ended(
        &self,
        store: &FileStore,
        key: &StoreKey,
        revoked: Revoked,
    ) -> Result<(), Failure> {
        store.remove(key).await.map_err(|e| {
            let what = match revoked {
                Revoked::Now => format!("Dynata revoked the session at {}", self.base_url),
                Revoked::AlreadyEnded => format!(
                    "the session at {} had already ended (Dynata no longer honours it)",
                    self.base_url
                ),
            };
            not_removed(store, key, &what, &e)
        })
    }

    /// A copy of `session` in a scratch store that outlives this process
    /// (removed by the caller, or by a later sweep).
    async fn set_aside(&self, key: &StoreKey, session: &StoredSession) -> Option<PathBuf> {
        let (scratch, aside) = self.scratch(SCRATCH_PREFIXES[1]).ok()?;
        aside.save(key, session, SystemTime::now()).await.ok()?;
        Some(scratch.keep())
    }

    /// The stored session, for `dynata login` and `dynata logout`, which
    /// revoke it: see [`load_making_private`].
    async fn stored_making_private(
        &self,
        key: &StoreKey,
    ) -> Result<Option<StoredSession>, Failure> {
        load_making_private(&self.store, key).await
    }

    /// `dynata logout`: revokes the stored session at Dynata and removes it.
    /// Returns what became of it (`None`: there was no session to revoke);
    /// one that has ended but cannot be removed is an error.
    /// Should Dynata not take the revocation, short of saying the session
    /// had already ended, the session stays stored (as refreshed on the
    /// way, if it was), to try again.
    pub(crate) async fn logout(&self) -> Result<Option<Revoked>, Failure> {
        let username = self.username()?;
        let key = self.key(&username);
        self.sweep_scratch_stores(&username).await;
        // Nothing of the account is left on this machine, not even a refusal.
        let _ = self.store.remove_rejected_login(&key).await;
        let live = Self::holding_lease(&self.store, &key, async {
            let session = self.stored_making_private(&key).await?;
            match session {
                // Expired at Dynata already: nothing to revoke.
                Some(session) if !refresh_usable(&session) => {
                    self.store.remove(&key).await.map_err(|e| {
                        not_removed(
                            &self.store,
                            &key,
                            &format!("the session at {} had expired", self.base_url),
                            &e,
                        )
                    })?;
                    Ok(false)
                }
                session => Ok::<_, Failure>(session.is_some()),
            }
        })
        .await?;
        if !live {
            return Ok(None);
        }
        self.revoke_stored(&username, &self.store).await.map(Some)
    }
}

/// What a revocation did to a session, which is no longer stored either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// Dynata took the revocation.
    Now,
    /// Dynata no longer honoured the session: its refresh or its revocation
    /// was refused with `invalid_grant`.
    AlreadyEnded,
}

/// Whether Dynata refused a revocation with `invalid_grant` (`400` or `401`,
/// "Session not active"): the session had already ended. The SDK sums up
/// Dynata's JSON refusal of a logout as its code, then its description; a
/// gateway's refusal has no such code, and proves nothing of the session.
fn revocation_found_it_ended(error: &dynata_sdk::Error) -> bool {
    matches!(
        error,
        dynata_sdk::Error::Api { status: 400 | 401, summary, .. }
            if summary.split(": ").next() == Some("invalid_grant")
    )
}

/// The session `store` holds under `key`, for a command that revokes it. A
/// session file others could read is no reason to leave its tokens live: it
/// is made private again (if it is a regular file, never through a symlink)
/// and read. A record that is not a session is removed.
async fn load_making_private(
    store: &FileStore,
    key: &StoreKey,
) -> Result<Option<StoredSession>, Failure> {
    let mut loaded = store.load(key).await;
    if let Err(StoreError::Insecure { .. }) = loaded {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = store.session_path(key);
            let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
            if regular {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Failure::io(&format!("make {} private", path.display()), &e))?;
            }
        }
        loaded = store.load(key).await;
    }
    match loaded {
        Ok(session) => Ok(session),
        Err(e) if e.is_unusable_content() => {
            let _ = store.remove(key).await;
            Ok(None)
        }
        Err(e) => Err(Failure::refused(format!(
            "cannot read the stored session: {e}"
        ))),
    }
}

/// The names of the scratch stores `dynata login` and `dynata logout` make
/// beside the sessions.
const SCRATCH_PREFIXES: [&str; 2] = [".login-", ".revoking-"];

/// How long a scratch store may go untouched before it is taken for left
/// behind: a revocation with every retry takes a few minutes at most.
const SCRATCH_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// Whether the scratch store `dir` holds a session, of any account (the
/// SDK's `FileStore` names them `<digest>.session`).
fn holds_a_session(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().ends_with(".session"))
    })
}

/// Creates `dir` and its missing parents `0700`, as the SDK's store does:
/// the session files' names are per-account digests.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Whether the session's refresh token is still usable now, made early by
/// the SDK's clock-skew allowance for it, so that the SDK agrees and never
/// falls back to a password login. (The full allowance of 5 s would call a
/// short-lived session, a sandbox's `--refresh-ttl 5`, dead from its start,
/// while the SDK still refreshes it.)
fn refresh_usable(session: &StoredSession) -> bool {
    let skew = SharingPolicy::default().skew_for(session);
    !session.refresh_remaining(SystemTime::now(), skew).is_zero()
}

/// What a renewal that failed with [`dynata_sdk::Error::LoginRequired`]
/// left: a client without a password gets it both when Dynata refused the
/// session's refresh token (`invalid_grant`: the SDK takes the session out
/// of the store) and when nothing was sent at all (the token store failed,
/// or another `dynata` held the renewal lease past the wait). Only the store
/// tells the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Renewal {
    /// The session has ended: the store no longer holds it.
    Ended,
    /// The session has ended, and what the store holds in its place is dead
    /// (expired, or not a session): for a caller holding the lease to take
    /// out.
    EndedLeavingDead,
    /// Not renewed for another reason, and a session is still stored: it
    /// may be live. (It may not be the one the command began with: the
    /// command's own renewals, or another process's, replace it; that is no
    /// sign of its end.)
    NotDone,
}

/// The one rule for a [`dynata_sdk::Error::LoginRequired`]: what the store
/// holds after it (`after`) says whether the session ended. Every command
/// reads the error by it; `dynata logout` also takes out what is dead.
fn renewal_refused(after: &Result<Option<StoredSession>, StoreError>) -> Renewal {
    match after {
        Ok(None) => Renewal::Ended,
        Ok(Some(after)) if !refresh_usable(after) => Renewal::EndedLeavingDead,
        Err(e) if e.is_unusable_content() => Renewal::EndedLeavingDead,
        _ => Renewal::NotDone,
    }
}

/// A session that has ended (`what` happened to it) but that `store` could
/// not remove: a local file, exit 2 as for any other (the profile, an
/// invoice), named for the user to delete.
fn not_removed(store: &FileStore, key: &StoreKey, what: &str, error: &StoreError) -> Failure {
    Failure::usage(format!(
        "{what}, but it is still stored on this machine ({error}): delete {}",
        store.session_path(key).display()
    ))
}

/// A session [`Renewal::NotDone`]: kept, and not the user's to log in
/// again for; `purpose` says what the renewal was for.
fn not_renewed(store: &FileStore, purpose: &str) -> Failure {
    let purpose = if purpose.is_empty() {
        String::new()
    } else {
        format!(" {purpose}")
    };
    // A directory that cannot be written (read-only, a full disk) fails
    // every renewal alike: say so, as for any local file, rather than "try
    // again".
    if let Err(e) = crate::dirs::write_probe(store.dir()) {
        return Failure::usage(format!(
            "could not renew the stored session{purpose}: cannot write in {} ({e}); the session is kept",
            store.dir().display()
        ));
    }
    Failure::refused(format!(
        "could not renew the stored session{purpose} (the token store in {} failed, or another \
         `dynata` held it); it is kept: try again",
        store.dir().display()
    ))
}

/// A refresh of the stored session refused without Dynata's `invalid_grant`:
/// a `400` or `401` whose JSON has another code (`invalid_client`) or none
/// (a gateway's `{"message": …}`), or a gateway's `401` or `403` without
/// Dynata's JSON error ([`dynata_sdk::Error::Api`]). The session is not
/// known to have ended, and the SDK keeps it stored.
fn refresh_refused(error: &dynata_sdk::Error) -> Failure {
    let why = match error {
        dynata_sdk::Error::Api {
            status, summary, ..
        } => format!("status {status}, {summary}"),
        dynata_sdk::Error::CredentialsRejected {
            status,
            error,
            description,
            ..
        } => [
            Some(format!("status {status}")),
            error.clone(),
            description.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
        other => other.to_string(),
    };
    let request_id = error
        .request_id()
        .map(|id| format!(", request id {id}"))
        .unwrap_or_default();
    Failure::refused(format!(
        "the refresh of the stored session was refused ({why}{request_id}), by Dynata or a \
         gateway in front of it; the session is kept: try again, and if it persists, log in again"
    ))
}

/// An SDK client, whether it has a real password to fall back on, and where
/// its session is stored.
#[derive(Debug)]
pub(crate) struct SessionClient {
    pub(crate) client: Client,
    has_password: bool,
    context_hint: String,
    store: FileStore,
    key: StoreKey,
}

impl SessionClient {
    /// The session's access token, renewed first if it must be; its failure
    /// read by [`Self::renewal_failure`].
    pub(crate) async fn access_token(&self) -> Result<AccessToken, Failure> {
        match self.client.access_token().await {
            Ok(token) => Ok(token),
            Err(error) => Err(self.renewal_failure(error).await),
        }
    }

    /// Runs `call`, one SDK call of the command, its error read by
    /// [`Self::failure`]. The token is got first, by [`Self::access_token`]:
    /// the SDK's error does not say whether a `401` or `403` is the
    /// endpoint's or that of the refresh it needed, and a renewal's failure
    /// must read the same from every command (the session is kept), not as
    /// the endpoint refusing the user. This costs nothing: the call itself
    /// starts by getting the token, which it then finds in the client's
    /// cache, without I/O. (A renewal the call needs after all, after a
    /// `401` to it or inside its retries, still fails as the call's.)
    pub(crate) async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, dynata_sdk::Error>>,
    ) -> Result<T, Failure> {
        self.access_token().await?;
        match call.await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.failure(error).await),
        }
    }

    /// The SDK's error, except that a session that cannot go on without a
    /// password (expired or revoked at Dynata) means "run dynata login";
    /// one the SDK could not renew for another reason (the token store, its
    /// lease) is kept, and said to be ([`renewal_refused`]).
    pub(crate) async fn failure(&self, error: dynata_sdk::Error) -> Failure {
        match error {
            dynata_sdk::Error::LoginRequired => {
                let after = self.store.load(&self.key).await;
                match renewal_refused(&after) {
                    Renewal::Ended | Renewal::EndedLeavingDead => Failure::refused(format!(
                        "the stored session has ended: {}",
                        self.context_hint
                    )),
                    Renewal::NotDone => not_renewed(&self.store, ""),
                }
            }
            // Without a password this can only be the refresh refused
            // without `invalid_grant` (with it, the SDK answers
            // `LoginRequired`, above): the session is kept.
            ref error @ dynata_sdk::Error::CredentialsRejected { .. } if !self.has_password => {
                refresh_refused(error)
            }
            other => other.into(),
        }
    }

    /// [`Self::failure`], for an error of `access_token()` alone, which sends
    /// nothing but a login or a refresh: without a password, a `401` or `403`
    /// there can only be the refresh's (elsewhere it may be an API call's).
    pub(crate) async fn renewal_failure(&self, error: dynata_sdk::Error) -> Failure {
        match error {
            ref refused @ dynata_sdk::Error::Api {
                status: 401 | 403, ..
            } if !self.has_password => refresh_refused(refused),
            other => self.failure(other).await,
        }
    }
}

/// The username for `dynata login`: the flag, `DYNATA_USERNAME`, or a prompt.
pub(crate) fn login_username(flag: Option<String>) -> Result<String, Failure> {
    if let Some(username) = flag
        .filter(|u| !u.is_empty())
        .or_else(|| env_var("DYNATA_USERNAME"))
    {
        return Ok(username);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no username: pass --username or set DYNATA_USERNAME (stdin is not a terminal, so dynata cannot ask)",
        ));
    }
    crate::output::note!("Dynata username: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::io("read the username", &e))?;
    let username = line.trim().to_owned();
    if username.is_empty() {
        return Err(Failure::usage("no username given"));
    }
    Ok(username)
}

/// The password for `dynata login`: `DYNATA_PASSWORD` (for the profile's
/// environment, only for the profile's own account, as for every command),
/// or a prompt that does not echo and names where the password goes (a
/// `DYNATA_BASE_URL` left in the shell may point somewhere unexpected).
pub(crate) fn login_password(context: &Context, username: &str) -> Result<String, Failure> {
    let base_url = &context.base_url;
    if let Some(password) = password_from_env() {
        context.check_shell_password_goes_here(username)?;
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no password: set DYNATA_PASSWORD (stdin is not a terminal, so dynata cannot ask)",
        ));
    }
    let password = crate::password::prompt(&format!("Password for {username} at {base_url}: "))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted => Failure {
                code: crate::failure::INTERRUPTED,
                message: "interrupted".to_owned(),
            },
            _ => Failure::io("read the password", &e),
        })?;
    if password.is_empty() {
        return Err(Failure::usage("no password given"));
    }
    Ok(password)
}
