//! What the upgraded packages' maintainer scripts and triggers do, and how
//! a patch handled each: reproduced natively, or not run (and then said in
//! the summary, the report and the VEX document). The vocabulary only; the
//! layer builder decides.

use std::fmt;

/// How a patch handled one effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// The layer holds what the script would have left.
    Reproduced,
    /// Neither reproduced nor run: the image differs from what apt leaves.
    NotRun,
}

impl fmt::Display for Handling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handling::Reproduced => "reproduced",
            Handling::NotRun => "not run",
        })
    }
}

/// One effect of a package's maintainer scripts or triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEffect {
    pub package: String,
    /// What the script changes (`update-ca-certificates: …`).
    pub effect: String,
    pub handling: Handling,
    /// The fix of the package's vulnerabilities takes effect only with this
    /// effect (a trust store hook): when it was not run, the evidence must
    /// not call them fixed.
    pub fix_depends_on_it: bool,
}

impl ScriptEffect {
    /// An effect the fix needs that the patch neither reproduced nor ran.
    pub fn leaves_fix_pending(&self) -> bool {
        self.handling == Handling::NotRun && self.fix_depends_on_it
    }
}
