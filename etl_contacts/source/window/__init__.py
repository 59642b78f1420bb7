"""Fetch one window completely while the data changes under us, whatever the server does.

Page numbers skip records when the data moves: a contact that becomes active jumps to page 1 and
shifts every record behind it, a deletion shifts them the other way. So pages are numbered only
where nothing else can reach the records, and each strategy, one module each, states what it
guarantees:

- `keyset`: answers sorted by createdAt (either direction); narrow the range past the last
  record seen, so every answer is an atomic snapshot of what is left (and, while the order may
  be by `_id`, whose ids an import mints late, prove by page number that none was left behind).
- `activity`: answers sorted by lastSeenAt, newest first (an inbox); a keyset on lastSeenAt,
  then catch-up passes for records that became active during the read, and the never-active
  contacts by page number where they sort together.
- `split`: any other order; cut the window until page 1 holds a whole part.
- `slice`: one second holding more than a page (a bulk import), paged by number until a pass
  finds nothing new.

`fetcher` picks the strategy from the order the answers show, and falls back to `split` when an
answer contradicts it. `reader` is the one way a strategy asks: it hands each record over once,
drops what lies outside the window, and says how many records of a page were new. A listing
ends on an empty page (the API's documented end): a shorter page is only a hint, proven by
asking the next one, since the page size may change; an empty answer where records were due
(a window's first, or one after a full page) is doubted, since a server may say success with
no records for a while. A strategy that cannot finish raises
`NotConvergedError`: a window is never reported complete on a guess.
"""

from etl_contacts.source.window.fetcher import WindowFetcher
from etl_contacts.source.window.reader import MAX_PASSES, Fetch

__all__ = ["MAX_PASSES", "Fetch", "WindowFetcher"]
