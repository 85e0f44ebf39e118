//! Typed HubSpot request and response bodies.

mod batch;
pub(crate) mod lists;
mod notes;
mod object;
mod properties;
mod search;

pub use batch::{
    BatchReadRequest, BatchResponse, CreateInput, IdInput, Inputs, MAX_BATCH_INPUTS, UpdateInput,
};
pub use lists::{ListMember, MembershipChange, ObjectList, RecordMembership};
pub use notes::{
    Association, AssociationTarget, AssociationType, NOTE_TO_CONTACT, NoteCreate, escape_html,
};
pub use object::{HubSpotObject, NextPage, Page, Paging};
pub use properties::{
    ModificationMetadata, Property, PropertyCreate, PropertyOption, PropertyOptionsUpdate,
};
pub use search::{
    Direction, Filter, FilterGroup, MAX_SEARCH_PAGE, Operator, SEARCH_RESULT_CAP, SearchRequest,
    Sort,
};
