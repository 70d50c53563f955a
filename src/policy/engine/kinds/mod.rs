//! What each session type does with a session command (`protocol-specs/policy.md`
//! §5.2–§5.5): the storage steps it takes, or the change it makes without the box
//! (`plan`), and what the session becomes when the box has answered (`complete`).
//! One module per session type; the engine checks what every command shares (the
//! session exists, the command is available in its state, the path to the box) and
//! hands the rest to the session's type. A new session type is a module here, its
//! properties in `policy::session`, and its arm in the dispatch
//! (`Engine::prepare_run`).

pub(super) mod fc;
pub(super) mod mm;
pub(super) mod sgc;

use crate::policy::session::Session;
use crate::policy::storage::StorageOp;

/// What a session command will do.
#[derive(Debug)]
pub(super) enum Plan {
    /// Start these storage steps, in order (one durable action).
    Steps(Vec<StorageOp>),
    /// Done without the box: the session as it will be (if it changes) and the
    /// message that says so.
    Done {
        /// The session after the command.
        next: Option<Box<Session>>,
        /// The completion message's text.
        text: String,
    },
    /// Not a command of this session type.
    NotValid,
}

/// What a session command came to once the box answered: the end of the completion
/// message, and what the engine does next.
#[derive(Debug, Default)]
pub(super) struct Completed {
    /// Added to "The … command in the … session completed."
    pub(super) extra: String,
    /// The engine's follow-ups, in order.
    pub(super) after: Vec<After>,
}

/// An engine follow-up of a completed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// Poll the background copy.
    PollCopy,
    /// The session's out-of-sync tracks are now this.
    Progress(u64),
    /// The session has no copy to follow any more.
    ForgetProgress,
    /// The background copy has just completed (IWNR2772I).
    CopyComplete,
}
