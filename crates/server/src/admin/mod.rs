//! What the study admin does, shared by the command line (`attune-server withdraw`, `device
//! revoke`, `protocol publish`, `enrol create`) and the researcher console's endpoints
//! (`console_admin.rs`): the rules for each study instruction ([`instructions`]) and for
//! enrolment codes ([`enrolment`]) are written once, here.

pub mod enrolment;
pub mod instructions;
