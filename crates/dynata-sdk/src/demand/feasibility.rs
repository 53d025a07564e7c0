//! Waiting for feasibility: polling `get_feasibility` with a growing pause
//! until every line item is `READY`, within the caller's time limit, on the
//! client's clock.

use std::time::{Duration, Instant};

use dynata_sample_api::types::{FeasibilityItem, FeasibilityStatus};

use crate::clock::{first_of, saturating_add};
use crate::error::server_text;
use crate::{Client, Error};

/// The pause after the first feasibility poll. Each later pause is 1.5
/// times the one before, up to [`FEASIBILITY_MAX_WAIT`]: polls at 0, 5,
/// 12.5, 23.75, 40.6, 65.9, 95.9, 125.9 s, … Dynata says feasibility takes
/// 20 to 120 s, so this asks about eight times in the usual case.
pub const FEASIBILITY_FIRST_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between two feasibility polls.
pub const FEASIBILITY_MAX_WAIT: Duration = Duration::from_secs(30);

/// How long before the caller's time limit the last poll is sent, when the
/// next pause would end past it: long enough for Dynata to answer, so that
/// a quote ready in the last stretch of the wait is not reported as late.
/// (A tenth of the time limit, if that is shorter.)
const LAST_POLL_BEFORE_DEADLINE: Duration = Duration::from_secs(1);

impl Client {
    /// Waits until Dynata has computed feasibility and price for every line
    /// item of project `ext_project_id`, and returns them.
    ///
    /// Polls `get_feasibility` at once, then after a pause that grows from
    /// [`FEASIBILITY_FIRST_WAIT`] by half each time to at most
    /// [`FEASIBILITY_MAX_WAIT`], while any line item is `PROCESSING` (or
    /// has a status this version does not know), or the answer lists none.
    /// When the next pause would end past `timeout`, the last poll is sent
    /// a second before it instead (a tenth of `timeout`, if shorter).
    ///
    /// - A line item whose feasibility is `FAILED` or `NOT_SUPPORTED` ends
    ///   the wait with [`Error::Infeasible`].
    /// - At `timeout` (on the client's clock, retries of each poll
    ///   included; up to a second before it, when the last poll's answer
    ///   says still computing) it ends with [`Error::FeasibilityTimeout`] once Dynata
    ///   has said a line item is being computed, or with [`Error::Timeout`]
    ///   if no poll was answered at all (a request in flight all along); no
    ///   request is sent after that, and one in flight is abandoned.
    /// - A poll is a `GET`: transient failures are retried first, under the
    ///   client's retry policy, but never with a wait that would end past
    ///   `timeout`. One that outlasts those retries (a few seconds of
    ///   `503`s; a `429` asking for 40 s) is a pause before the next poll:
    ///   the usual pause, or the `Retry-After` if longer, when it ends
    ///   before `timeout` (a poll sent after the last poll's time is the
    ///   last); otherwise it
    ///   ends the wait as the error it is (Dynata down for the whole wait
    ///   is its `503`, not a timeout). Any other error of a poll ends the
    ///   wait with that error.
    ///
    /// Dropping the future stops the polling; nothing keeps running.
    pub async fn wait_for_feasibility(
        &self,
        ext_project_id: &str,
        timeout: Duration,
    ) -> Result<Vec<FeasibilityItem>, Error> {
        let clock = self.clock();
        let deadline = saturating_add(clock.now(), timeout);
        // The caller's own id, as given: not a server's text.
        let timed_out = || Error::FeasibilityTimeout {
            ext_project_id: ext_project_id.to_string(),
            waited: timeout,
        };
        // Until a poll is answered, a timeout says only that Dynata did not
        // answer in time, not that anything is still being computed.
        let unanswered = || Error::Timeout {
            status: None,
            request_id: None,
            errors: Vec::new(),
            retry_after: None,
        };
        let last_poll_at = deadline
            .checked_sub(LAST_POLL_BEFORE_DEADLINE.min(timeout / 10))
            .unwrap_or(deadline);
        let mut last_poll = false;
        // Whether a poll has answered with the line items: only then does a
        // timeout say that something is still being computed.
        let mut computing = false;
        for poll in 1u32.. {
            let answered = first_of(
                self.feasibility(ext_project_id, deadline),
                clock.sleep_until(deadline),
            )
            .await;
            let items = match answered {
                Some(Ok(items)) => items,
                // A transient failure the poll's retries did not outlast
                // (a few seconds of `503`s; a `429` or `503` whose
                // `Retry-After` is longer than they could wait) is a pause
                // before the next poll, if it ends in time, not the end of
                // the wait: the quote is still being computed meanwhile.
                Some(Err(error)) => {
                    let now = clock.now();
                    // Never sooner than the usual pause: a `Retry-After: 0`
                    // (or one the poll's retries could already honour) must
                    // not turn the wait into a loop of requests.
                    let asked = error.is_transient().then(|| {
                        error
                            .retry_after()
                            .unwrap_or_default()
                            .max(pause_after(poll))
                    });
                    match asked.map(|wait| saturating_add(now, wait)) {
                        Some(wake) if !last_poll && wake < deadline => {
                            last_poll = wake >= last_poll_at;
                            clock.sleep_until(wake).await;
                            continue;
                        }
                        _ => return Err(error),
                    }
                }
                None if !computing => return Err(unanswered()),
                None => return Err(timed_out()),
            };
            computing = true;
            if let Some(items) = settled(items)? {
                return Ok(items);
            }
            let now = clock.now();
            if last_poll || now >= deadline {
                return Err(timed_out());
            }
            let mut wake = saturating_add(now, pause_after(poll));
            if wake >= last_poll_at {
                wake = last_poll_at.max(now);
                last_poll = true;
            }
            clock.sleep_until(wake).await;
        }
        unreachable!("the loop above returns")
    }

    /// One poll, whose retries end before `until`.
    async fn feasibility(
        &self,
        ext_project_id: &str,
        until: Instant,
    ) -> Result<Vec<FeasibilityItem>, Error> {
        use dynata_sample_api::Envelope as _;
        let envelope = self
            .envelope_before(Some(until), |api| {
                let ext_project_id = ext_project_id.to_string();
                async move {
                    api.get_feasibility()
                        .ext_project_id(ext_project_id)
                        .send()
                        .await
                }
            })
            .await?;
        Ok(envelope.into_data())
    }
}

/// `Some(items)` when every item is `READY`, `None` while any is still
/// being computed (or there is none yet), an error when one never will be.
fn settled(items: Vec<FeasibilityItem>) -> Result<Option<Vec<FeasibilityItem>>, Error> {
    // Every project has a line item: none at all is not computed yet (or a
    // broken answer), never "all of them ready".
    let mut ready = !items.is_empty();
    for item in &items {
        match &item.feasibility.status {
            FeasibilityStatus::Ready => {}
            FeasibilityStatus::Failed | FeasibilityStatus::NotSupported => {
                return Err(Error::Infeasible {
                    ext_line_item_id: shown(&item.ext_line_item_id),
                    status: item.feasibility.status.clone(),
                });
            }
            // `PROCESSING`, or a status added after this version: ask again.
            _ => ready = false,
        }
    }
    Ok(ready.then_some(items))
}

/// The pause after poll number `poll` (1-based).
fn pause_after(poll: u32) -> Duration {
    let mut pause = FEASIBILITY_FIRST_WAIT;
    for _ in 1..poll.min(16) {
        pause = pause.mul_f64(1.5);
    }
    pause.min(FEASIBILITY_MAX_WAIT)
}

/// An id as Dynata sent it back, if it is safe to put into an error.
fn shown(id: &str) -> String {
    crate::error::server_id(id, crate::error::MAX_RESOURCE_ID)
        .or_else(|| server_text(id))
        .unwrap_or_else(|| "(an id not shown)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_by_half_to_thirty_seconds() {
        let pauses: Vec<f64> = (1..=7).map(|n| pause_after(n).as_secs_f64()).collect();
        assert_eq!(pauses, vec![5.0, 7.5, 11.25, 16.875, 25.3125, 30.0, 30.0]);
        assert_eq!(pause_after(u32::MAX), FEASIBILITY_MAX_WAIT);
    }
}
