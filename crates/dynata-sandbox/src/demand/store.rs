//! Everything the Demand API remembers, per account: projects (with their
//! line items and permissions), events and templates. An account is a
//! company: its users share its records and never see another's.

use std::time::Duration;

use tokio::time::Instant;

use super::clock::Clock;
use super::envelope::ApiError;
use super::events::Event;
use super::fieldwork;
use super::projects::Project;
use super::templates::Template;

/// How the Demand API is configured, from the builder.
#[derive(Debug, Clone)]
pub(crate) struct DemandSettings {
    /// How long feasibility stays `PROCESSING` after a priced change.
    pub(crate) feasibility_delay: Duration,
    /// Accounts and their users; users named in none have an account of
    /// their own, named after them.
    pub(crate) accounts: Vec<(String, Vec<String>)>,
}

pub(crate) struct Account {
    /// The company id `users/info` and `/user` report.
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) members: Vec<String>,
    /// Oldest first.
    pub(crate) projects: Vec<Project>,
    pub(crate) events: Vec<Event>,
    pub(crate) templates: Vec<Template>,
}

pub(crate) struct Demand {
    pub(crate) clock: Clock,
    pub(crate) feasibility_delay: Duration,
    /// Every user, in the order configured: a user's id is its index + 1.
    users: Vec<String>,
    accounts: Vec<Account>,
    next_event_id: i64,
    next_template_id: i64,
}

impl Demand {
    pub(crate) fn new(settings: DemandSettings, users: &[String]) -> Demand {
        let mut accounts: Vec<Account> = Vec::new();
        let mut account = |name: &str, members: Vec<String>| {
            accounts.push(Account {
                id: i64::try_from(accounts.len()).unwrap_or(0) + 1,
                name: name.to_owned(),
                members,
                projects: Vec::new(),
                events: Vec::new(),
                templates: Vec::new(),
            });
        };
        for (name, members) in &settings.accounts {
            let members = members
                .iter()
                .filter(|m| users.contains(m))
                .cloned()
                .collect();
            account(name, members);
        }
        for user in users {
            if !settings
                .accounts
                .iter()
                .any(|(_, members)| members.contains(user))
            {
                account(user, vec![user.clone()]);
            }
        }
        Demand {
            clock: Clock::new(),
            feasibility_delay: settings.feasibility_delay,
            users: users.to_vec(),
            accounts,
            next_event_id: 1001,
            next_template_id: 1,
        }
    }

    /// The account `username` belongs to.
    pub(crate) fn account_of(&self, username: &str) -> usize {
        self.accounts
            .iter()
            .position(|account| account.members.iter().any(|m| m == username))
            .unwrap_or(0)
    }

    pub(crate) fn account(&self, username: &str) -> &Account {
        &self.accounts[self.account_of(username)]
    }

    pub(crate) fn account_mut(&mut self, username: &str) -> &mut Account {
        let index = self.account_of(username);
        &mut self.accounts[index]
    }

    /// A user's id (its position among the configured users, from 1).
    pub(crate) fn user_id(&self, username: &str) -> i64 {
        self.users
            .iter()
            .position(|user| user == username)
            .map_or(0, |index| i64::try_from(index).unwrap_or(0) + 1)
    }

    pub(crate) fn username_of(&self, id: i64) -> Option<&str> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.users.get(index).map(String::as_str)
    }

    /// The id the next event will get.
    pub(crate) fn peek_event_id(&self) -> i64 {
        self.next_event_id
    }

    /// Uses up the id `peek_event_id` answered.
    pub(crate) fn take_event_id(&mut self) -> i64 {
        let id = self.next_event_id;
        self.next_event_id += 1;
        id
    }

    pub(crate) fn next_template_id(&mut self) -> i64 {
        let id = self.next_template_id;
        self.next_template_id += 1;
        id
    }

    /// Brings field work up to `now` for the caller's account: line items
    /// whose target was met become `COMPLETED`, and projects follow.
    pub(crate) fn settle(&mut self, username: &str, now: Instant) {
        for project in &mut self.account_mut(username).projects {
            for item in &mut project.line_items {
                fieldwork::settle(item, now);
            }
            project.follow_line_items(now);
        }
    }

    /// The caller's project, or `404` (also for another account's project,
    /// so that ids do not leak between accounts).
    pub(crate) fn project_mut(
        &mut self,
        username: &str,
        id: &str,
    ) -> Result<&mut Project, ApiError> {
        self.account_mut(username)
            .projects
            .iter_mut()
            .find(|project| project.id == id)
            .ok_or_else(|| ApiError::not_found("project", id))
    }

    pub(crate) fn project(&self, username: &str, id: &str) -> Result<&Project, ApiError> {
        self.account(username)
            .projects
            .iter()
            .find(|project| project.id == id)
            .ok_or_else(|| ApiError::not_found("project", id))
    }
}
