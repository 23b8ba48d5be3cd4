//! ISO/IEC 27001:2013 Annex A → 2022: the correspondence of ISO/IEC 27002:2022 Annex B
//! (table B.2), for SoAs and risk registers still written against the 2013 controls. Each of
//! the 114 controls of 2013 maps to one 2022 control (two for A.18.2.3); 57 of them merge
//! into 24 controls of 2022, and 11 controls of 2022 have no 2013 counterpart.

use std::collections::BTreeMap;

use crate::catalog::ControlId;

/// Every 2013 control and the 2022 controls it became.
pub const MAPPING: [(&str, &[&str]); 114] = [
    ("A.5.1.1", &["A.5.1"]),
    ("A.5.1.2", &["A.5.1"]),
    ("A.6.1.1", &["A.5.2"]),
    ("A.6.1.2", &["A.5.3"]),
    ("A.6.1.3", &["A.5.5"]),
    ("A.6.1.4", &["A.5.6"]),
    ("A.6.1.5", &["A.5.8"]),
    ("A.6.2.1", &["A.8.1"]),
    ("A.6.2.2", &["A.6.7"]),
    ("A.7.1.1", &["A.6.1"]),
    ("A.7.1.2", &["A.6.2"]),
    ("A.7.2.1", &["A.5.4"]),
    ("A.7.2.2", &["A.6.3"]),
    ("A.7.2.3", &["A.6.4"]),
    ("A.7.3.1", &["A.6.5"]),
    ("A.8.1.1", &["A.5.9"]),
    ("A.8.1.2", &["A.5.9"]),
    ("A.8.1.3", &["A.5.10"]),
    ("A.8.1.4", &["A.5.11"]),
    ("A.8.2.1", &["A.5.12"]),
    ("A.8.2.2", &["A.5.13"]),
    ("A.8.2.3", &["A.5.10"]),
    ("A.8.3.1", &["A.7.10"]),
    ("A.8.3.2", &["A.7.10"]),
    ("A.8.3.3", &["A.7.10"]),
    ("A.9.1.1", &["A.5.15"]),
    ("A.9.1.2", &["A.5.15"]),
    ("A.9.2.1", &["A.5.16"]),
    ("A.9.2.2", &["A.5.18"]),
    ("A.9.2.3", &["A.8.2"]),
    ("A.9.2.4", &["A.5.17"]),
    ("A.9.2.5", &["A.5.18"]),
    ("A.9.2.6", &["A.5.18"]),
    ("A.9.3.1", &["A.5.17"]),
    ("A.9.4.1", &["A.8.3"]),
    ("A.9.4.2", &["A.8.5"]),
    ("A.9.4.3", &["A.5.17"]),
    ("A.9.4.4", &["A.8.18"]),
    ("A.9.4.5", &["A.8.4"]),
    ("A.10.1.1", &["A.8.24"]),
    ("A.10.1.2", &["A.8.24"]),
    ("A.11.1.1", &["A.7.1"]),
    ("A.11.1.2", &["A.7.2"]),
    ("A.11.1.3", &["A.7.3"]),
    ("A.11.1.4", &["A.7.5"]),
    ("A.11.1.5", &["A.7.6"]),
    ("A.11.1.6", &["A.7.2"]),
    ("A.11.2.1", &["A.7.8"]),
    ("A.11.2.2", &["A.7.11"]),
    ("A.11.2.3", &["A.7.12"]),
    ("A.11.2.4", &["A.7.13"]),
    ("A.11.2.5", &["A.7.10"]),
    ("A.11.2.6", &["A.7.9"]),
    ("A.11.2.7", &["A.7.14"]),
    ("A.11.2.8", &["A.8.1"]),
    ("A.11.2.9", &["A.7.7"]),
    ("A.12.1.1", &["A.5.37"]),
    ("A.12.1.2", &["A.8.32"]),
    ("A.12.1.3", &["A.8.6"]),
    ("A.12.1.4", &["A.8.31"]),
    ("A.12.2.1", &["A.8.7"]),
    ("A.12.3.1", &["A.8.13"]),
    ("A.12.4.1", &["A.8.15"]),
    ("A.12.4.2", &["A.8.15"]),
    ("A.12.4.3", &["A.8.15"]),
    ("A.12.4.4", &["A.8.17"]),
    ("A.12.5.1", &["A.8.19"]),
    ("A.12.6.1", &["A.8.8"]),
    ("A.12.6.2", &["A.8.19"]),
    ("A.12.7.1", &["A.8.34"]),
    ("A.13.1.1", &["A.8.20"]),
    ("A.13.1.2", &["A.8.21"]),
    ("A.13.1.3", &["A.8.22"]),
    ("A.13.2.1", &["A.5.14"]),
    ("A.13.2.2", &["A.5.14"]),
    ("A.13.2.3", &["A.5.14"]),
    ("A.13.2.4", &["A.6.6"]),
    ("A.14.1.1", &["A.5.8"]),
    ("A.14.1.2", &["A.8.26"]),
    ("A.14.1.3", &["A.8.26"]),
    ("A.14.2.1", &["A.8.25"]),
    ("A.14.2.2", &["A.8.32"]),
    ("A.14.2.3", &["A.8.32"]),
    ("A.14.2.4", &["A.8.32"]),
    ("A.14.2.5", &["A.8.27"]),
    ("A.14.2.6", &["A.8.31"]),
    ("A.14.2.7", &["A.8.30"]),
    ("A.14.2.8", &["A.8.29"]),
    ("A.14.2.9", &["A.8.29"]),
    ("A.14.3.1", &["A.8.33"]),
    ("A.15.1.1", &["A.5.19"]),
    ("A.15.1.2", &["A.5.20"]),
    ("A.15.1.3", &["A.5.21"]),
    ("A.15.2.1", &["A.5.22"]),
    ("A.15.2.2", &["A.5.22"]),
    ("A.16.1.1", &["A.5.24"]),
    ("A.16.1.2", &["A.6.8"]),
    ("A.16.1.3", &["A.6.8"]),
    ("A.16.1.4", &["A.5.25"]),
    ("A.16.1.5", &["A.5.26"]),
    ("A.16.1.6", &["A.5.27"]),
    ("A.16.1.7", &["A.5.28"]),
    ("A.17.1.1", &["A.5.29"]),
    ("A.17.1.2", &["A.5.29"]),
    ("A.17.1.3", &["A.5.29"]),
    ("A.17.2.1", &["A.8.14"]),
    ("A.18.1.1", &["A.5.31"]),
    ("A.18.1.2", &["A.5.32"]),
    ("A.18.1.3", &["A.5.33"]),
    ("A.18.1.4", &["A.5.34"]),
    ("A.18.1.5", &["A.5.31"]),
    ("A.18.2.1", &["A.5.35"]),
    ("A.18.2.2", &["A.5.36"]),
    ("A.18.2.3", &["A.5.36", "A.8.8"]),
];

/// The 11 controls of 2022 that no 2013 control became.
pub const NEW_IN_2022: [&str; 11] = [
    "A.5.7", "A.5.23", "A.5.30", "A.7.4", "A.8.9", "A.8.10", "A.8.11", "A.8.12", "A.8.16",
    "A.8.23", "A.8.28",
];

/// Whether `id` is written as a 2013 control (`A.12.6.1`).
pub fn is_2013_id(id: &str) -> bool {
    matches!(
        ControlId::parse(id),
        Err(crate::catalog::ControlIdProblem::Iso2013)
    )
}

/// The 2022 controls a 2013 control became, or None if `id` is not a 2013 control.
pub fn to_2022(id: &str) -> Option<Vec<ControlId>> {
    let id = id.split_whitespace().next().unwrap_or("");
    MAPPING.iter().find(|(old, _)| *old == id).map(|(_, new)| {
        new.iter()
            .map(|n| ControlId::parse(n).expect("the mapping names 2022 controls"))
            .collect()
    })
}

/// What a conversion did, for the person who asked for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversionReport {
    /// 2013 controls read.
    pub converted: usize,
    /// Each 2022 control several 2013 controls merged into, with those controls.
    pub merged: BTreeMap<ControlId, Vec<String>>,
    /// The controls new in 2022, which the converted file could not decide.
    pub new_in_2022: Vec<ControlId>,
}

impl ConversionReport {
    /// The report in a few lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "converted {} ISO 27001:2013 controls to {} controls of 2022 (ISO/IEC 27002:2022 \
             Annex B)",
            self.converted,
            self.merged.len()
        )];
        let merged: Vec<String> = self
            .merged
            .iter()
            .filter(|(_, from)| from.len() > 1)
            .map(|(to, from)| format!("{to} <- {}", from.join(" + ")))
            .collect();
        if !merged.is_empty() {
            out.push(format!("merged: {}", merged.join("; ")));
        }
        if !self.new_in_2022.is_empty() {
            let titles: Vec<String> = self
                .new_in_2022
                .iter()
                .map(|c| format!("{c} {}", c.control().title))
                .collect();
            out.push(format!(
                "new in 2022, not decided by this file (add them to the SoA): {}",
                titles.join("; ")
            ));
        }
        out
    }
}
