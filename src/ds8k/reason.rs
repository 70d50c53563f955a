//! Why the DS8000 refused an operation: the reason codes the HMC protocol carries and
//! the model's typed error (spec: protocol-specs/ds8k.md §5).

use crate::wire_enum;

wire_enum! {
    /// Why the storage image refused an operation (spec: ds8k.md §5).
    pub struct Ds8kReason(u16) {
        /// No volume with this id.
        UNKNOWN_VOLUME = 0x0D01,
        /// A volume with this id exists already.
        VOLUME_EXISTS = 0x0D02,
        /// The id cannot name a volume (LSS FF).
        INVALID_VOLUME_ID = 0x0D03,
        /// Size zero or over the box's maximum.
        INVALID_SIZE = 0x0D04,
        /// The address group holds the other volume type.
        ADDRESS_GROUP_TYPE = 0x0D05,
        /// The volume is in a FlashCopy relationship, has backups or is being recovered.
        VOLUME_IN_USE = 0x0D06,
        /// Track number past the end of the volume.
        TRACK_OUT_OF_RANGE = 0x0D07,
        /// A volume twice where it may appear once.
        DUPLICATE_VOLUME = 0x0D08,
        /// Source and target differ in type, or the target is smaller.
        SIZE_MISMATCH = 0x0D10,
        /// Source and target are the same volume.
        SAME_VOLUME = 0x0D11,
        /// The target is already the target of a relationship.
        ALREADY_A_TARGET = 0x0D12,
        /// A target would become a source, or a source a target (no cascading).
        CASCADE_NOT_SUPPORTED = 0x0D13,
        /// The source would have more than 12 targets.
        TOO_MANY_TARGETS = 0x0D14,
        /// The source would have a second incremental relationship.
        INCREMENTAL_EXISTS = 0x0D15,
        /// No relationship for this pair.
        NO_RELATIONSHIP = 0x0D16,
        /// resyncflash on a relationship without change recording.
        NOT_INCREMENTAL = 0x0D17,
        /// Host write to a target established with inhibit target writes.
        TARGET_WRITE_INHIBITED = 0x0D18,
        /// Host write to a frozen source (extended long busy).
        LONG_BUSY = 0x0D19,
        /// mkflash on a pair already in a relationship (use resyncflash).
        RELATIONSHIP_EXISTS = 0x0D1A,
        /// The volume has no safeguarded capacity.
        NO_SAFEGUARDED_CAPACITY = 0x0D20,
        /// The volume has the most backups the box keeps.
        BACKUP_LIMIT = 0x0D22,
        /// No backup with this id on the volume.
        UNKNOWN_BACKUP = 0x0D23,
        /// Safeguarded capacity smaller than what the backups use.
        CAPACITY_TOO_SMALL = 0x0D25,
        /// An empty list where one item at least is needed.
        NOTHING_TO_DO = 0x0D26,
        /// The safeguarded capacity asked for would take the box's bookkeeping over
        /// its memory budget (`storage.memory_budget_mib`).
        MEMORY_BUDGET = 0x0D27,
        /// The request arrived after its `not_after_ms`: the client has stopped
        /// waiting for it, so the box does not carry it out (ds8k.md §3.3).
        REQUEST_EXPIRED = 0x0D28,
        /// The request's writer is in an older epoch than the box has seen from its
        /// fence domain: a newer active server has taken over (ds8k.md §3.4).
        FENCED = 0x0D29,
        /// FENCE of a new domain when the box already keeps the most it keeps.
        FENCE_TABLE_FULL = 0x0D2A,
        /// Metro Mirror: no PPRC path from the primary's LSS to the secondary's, or
        /// its link is down (ds8k.md §3.5).
        NO_PATH = 0x0D30,
        /// Metro Mirror: a volume is already in a PPRC pair.
        PPRC_PAIR_EXISTS = 0x0D31,
        /// Metro Mirror: the volumes are not a PPRC pair.
        NOT_A_PPRC_PAIR = 0x0D32,
        /// Metro Mirror: a host write to a secondary that has not been failed over.
        SECONDARY_READ_ONLY = 0x0D33,
        /// Metro Mirror: primary and secondary on the same storage image, or a path
        /// within one image.
        SAME_IMAGE = 0x0D34,
        /// Metro Mirror: the link between the two images is down (a new path).
        LINK_DOWN = 0x0D35,
        /// Metro Mirror: the pair is not in a state the request applies to.
        PPRC_STATE = 0x0D36,
        /// Metro Mirror: a path that pairs still use.
        PATH_IN_USE = 0x0D37,
        /// No such storage image in the simulated complex.
        UNKNOWN_IMAGE = 0x0D38,
    }
}

/// A refused operation: the reason code and a sentence naming what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Ds8kError {
    /// The reason code (wire value).
    pub reason: Ds8kReason,
    /// What, in words.
    pub detail: String,
}

pub(crate) fn refuse<T>(reason: Ds8kReason, detail: impl Into<String>) -> Result<T, Ds8kError> {
    Err(Ds8kError {
        reason,
        detail: detail.into(),
    })
}
