//! Paging: a list operation as a [`Stream`] of its items, following
//! `offset`/`limit` until `meta.total` (or the last `meta.links.next`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dynata_sample_api::Envelope;
use futures_core::Stream;

use super::SampleResult;
use crate::{Client, Error};

/// Which page to ask for: pass both to the list operation's `offset` and
/// `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRequest {
    /// How many records to skip.
    pub offset: i64,
    /// How many records to ask for: the page size.
    pub limit: i64,
}

impl PageRequest {
    /// The page of `limit` records after the first `offset`: for testing a
    /// paging closure of your own.
    ///
    /// ```
    /// let third = dynata_sdk::PageRequest::new(20, 10);
    /// assert_eq!((third.offset, third.limit), (20, 10));
    /// ```
    pub fn new(offset: i64, limit: i64) -> Self {
        PageRequest { offset, limit }
    }
}

type PageFuture<I> = Pin<Box<dyn Future<Output = Result<Fetched<I>, Error>> + Send>>;

/// One page's items, whether another page follows, and `meta.total`.
struct Fetched<I> {
    items: Vec<I>,
    more: bool,
    total: Option<i64>,
}

impl Client {
    /// Every item of a list operation, page after page, as a [`Stream`].
    ///
    /// `call` sends one page: it receives a generated client and the
    /// [`PageRequest`] to pass on as `offset` and `limit`:
    ///
    /// ```no_run
    /// # async fn example(client: dynata_sdk::Client) -> Result<(), dynata_sdk::Error> {
    /// use futures_util::StreamExt as _;
    ///
    /// let mut projects = client.sample_items(100, |api, page| async move {
    ///     api.list_projects()
    ///         .state("LAUNCHED")
    ///         .offset(page.offset)
    ///         .limit(page.limit)
    ///         .send()
    ///         .await
    /// });
    /// while let Some(project) = projects.next().await {
    ///     println!("{}", project?.ext_project_id);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Pages are fetched one at a time, when the items before are consumed,
    /// each through [`Client::sample`] (so with its `401` renewal, retries
    /// and errors). The next offset is this one plus the items received
    /// (the server may cap `page_size`), so no page is fetched twice. The
    /// stream ends after the page that reaches `meta.total`; without a
    /// total, after a page without `meta.links.next` (if the answer has
    /// links) or a short or empty page (short of `meta.pageSize` if the
    /// server says it capped the size below `page_size`). An empty page at
    /// an offset short of its own `meta.total` ends the stream with an
    /// [`Error::Decode`]: the rest of the list could not be read. An error
    /// is the stream's last item. A `page_size` of 0 is an [`Error::InvalidRequest`]. Dynata
    /// documents no largest page size and its clients cap it at 50 to 1000,
    /// so none is checked here: a server that refuses one ends the stream
    /// with its refusal (the sandbox refuses more than 1000).
    ///
    /// A server that ignores `offset` would answer every page with the
    /// first: a page that begins with the item the page before began with,
    /// under the same `meta.total`, ends the stream with an
    /// [`Error::Decode`], rather than ask for ever.
    pub fn sample_items<E, I, F, Fut>(&self, page_size: u32, call: F) -> SampleItems<I>
    where
        E: Envelope<Data = Vec<I>> + Send + 'static,
        I: Clone + PartialEq + Send + 'static,
        F: Fn(dynata_sample_api::Client, PageRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SampleResult<E>> + Send + 'static,
    {
        let call = Arc::new(call);
        let client = self.clone();
        let limit = i64::from(page_size);
        let fetch = move |offset: i64| -> PageFuture<I> {
            let call = call.clone();
            let client = client.clone();
            Box::pin(async move {
                let page = PageRequest { offset, limit };
                let envelope: E = client
                    .sample_envelope(move |api| (*call)(api, page))
                    .await?;
                let meta = envelope.meta().cloned().unwrap_or_default();
                let items = envelope.into_data();
                let received = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let next = offset.saturating_add(received);
                // An empty page at an offset short of the page's own
                // `meta.total` contradicts it: ending here would hand back
                // part of the list as if it were all of it. (A list that
                // shrank in between says so in its total, and ends.)
                if let Some(total) = meta.total.filter(|total| received == 0 && offset < *total) {
                    return Err(Error::decode(format!(
                        "the page at offset {offset} is empty, but the list says it has {total} items: the rest of the list could not be read"
                    )));
                }
                // The size the server says it used, if it capped ours.
                let full_page = meta
                    .page_size
                    .filter(|size| *size > 0)
                    .map_or(limit, |size| size.min(limit));
                let more = received > 0
                    && match (meta.total, meta.links) {
                        (Some(total), _) => next < total,
                        // An empty link (a Go server's string with no
                        // value) is none.
                        (None, Some(links)) => links.next.is_some_and(|next| !next.is_empty()),
                        (None, None) => received >= full_page,
                    };
                Ok(Fetched {
                    items,
                    more,
                    total: meta.total,
                })
            })
        };
        SampleItems {
            fetch: Box::new(fetch),
            state: if page_size == 0 {
                State::Refused
            } else {
                State::Fetching(0, None)
            },
            buffered: VecDeque::new(),
            first_of_last_page: None,
            total_of_last_page: None,
        }
    }
}

/// The items of a list operation, page after page: see
/// [`Client::sample_items`].
pub struct SampleItems<I> {
    fetch: Box<dyn Fn(i64) -> PageFuture<I> + Send + Sync>,
    state: State<I>,
    /// Items of the last page not yet yielded.
    buffered: VecDeque<I>,
    /// The first item and `meta.total` of the last page, to notice a page
    /// served again (a list that grew in between says so in its total).
    first_of_last_page: Option<I>,
    total_of_last_page: Option<i64>,
}

enum State<I> {
    /// The page at this offset is next; its request once under way.
    Fetching(i64, Option<PageFuture<I>>),
    /// The page size was 0: the stream's one item is that error.
    Refused,
    /// The last page has been fetched, or an error yielded.
    Done,
}

impl<I> fmt::Debug for SampleItems<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Fetching(offset, _) => format!("next offset {offset}"),
            State::Refused => "refused".into(),
            State::Done => "done".into(),
        };
        f.debug_struct("SampleItems")
            .field("state", &state)
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

impl<I> SampleItems<I> {
    /// `meta.total` of the last page fetched: how many items the list has,
    /// as of that page. `None` before the first page, or if the list does
    /// not say.
    pub fn total(&self) -> Option<i64> {
        self.total_of_last_page
    }
}

// Nothing in it is structurally pinned: the page future is boxed.
impl<I> Unpin for SampleItems<I> {}

impl<I: Clone + PartialEq> Stream for SampleItems<I> {
    type Item = Result<I, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.buffered.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            let (offset, in_flight) = match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Refused => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(Error::invalid_request(
                        "the page size must be at least 1",
                    ))));
                }
                State::Fetching(offset, in_flight) => (*offset, in_flight),
            };
            let request = in_flight.get_or_insert_with(|| (this.fetch)(offset));
            let fetched = match request.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(fetched) => fetched,
            };
            match fetched {
                Ok(Fetched { items, more, total }) => {
                    let served_again = total == this.total_of_last_page
                        && items
                            .first()
                            .is_some_and(|first| this.first_of_last_page.as_ref() == Some(first));
                    if served_again {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(Error::decode(format!(
                            "the page at offset {offset} begins with the item the page before it began with: the server ignores `offset` for this list, so the items after its first page cannot be listed"
                        )))));
                    }
                    this.first_of_last_page = items.first().cloned();
                    this.total_of_last_page = total;
                    let received = i64::try_from(items.len()).unwrap_or(i64::MAX);
                    this.state = if more {
                        State::Fetching(offset.saturating_add(received), None)
                    } else {
                        State::Done
                    };
                    this.buffered.extend(items);
                }
                Err(error) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.state {
            State::Done => (self.buffered.len(), Some(self.buffered.len())),
            _ => (self.buffered.len(), None),
        }
    }
}
