//! The Annex A:2022 catalog: the 93 controls, embedded from `annex-a-2022.csv`, and the
//! `ControlId` newtype that only holds ids that exist in it.

use std::{fmt, sync::OnceLock};

use serde::{Deserialize, Serialize};

/// The catalog as shipped: `id,theme,title`, one control a line. Embedded so the binary never
/// depends on a file next to it.
const CSV: &str = include_str!("annex-a-2022.csv");

/// How many controls each 2022 theme has: A.5 (37), A.6 (8), A.7 (14), A.8 (34).
const THEME_SIZES: [(u8, u8); 4] = [(5, 37), (6, 8), (7, 14), (8, 34)];

/// The ranges quoted in error messages, so a person sees what a valid id looks like.
pub const VALID_RANGES: &str = "A.5.1-A.5.37, A.6.1-A.6.8, A.7.1-A.7.14, A.8.1-A.8.34";

/// An Annex A:2022 control id such as `A.5.15`. Only ids in the catalog can be built, so a
/// `ControlId` in hand is always one of the 93.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ControlId {
    theme: u8,
    number: u8,
}

/// Why a string is not an Annex A:2022 control id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlIdProblem {
    /// Not of the form `A.<theme>.<number>`.
    Malformed,
    /// Three parts, as ISO 27001:2013 control ids had (`A.12.6.1`).
    Iso2013,
    /// Two parts, but a theme Annex A:2022 does not have (`A.9.99`, `A.12.6`): 2022 has
    /// themes 5 to 8 only.
    NoSuchTheme,
    /// Well formed but the 2022 catalog has no such control (`A.5.38`).
    NotInCatalog,
}

impl ControlIdProblem {
    /// The sentence that follows the quoted id in an error message.
    pub fn explain(self) -> String {
        match self {
            Self::Malformed => format!(
                "is not an Annex A control id (expected A.<theme>.<number>; 2022 ids are {VALID_RANGES})"
            ),
            Self::Iso2013 => format!(
                "has three parts, as ISO 27001:2013 control ids did; Annex A:2022 ids have two ({VALID_RANGES})"
            ),
            Self::NoSuchTheme => format!(
                "is not in Annex A:2022, whose themes are A.5 to A.8 ({VALID_RANGES})"
            ),
            Self::NotInCatalog => {
                format!("is not in Annex A:2022 (2022 ids are {VALID_RANGES})")
            }
        }
    }
}

impl ControlId {
    /// Parses `A.5.15`. Anything after the id and a space is ignored, because the seed writes
    /// controls as `"A.8.28 Secure coding"`.
    pub fn parse(raw: &str) -> Result<Self, ControlIdProblem> {
        let id = raw.split_whitespace().next().unwrap_or("");
        let Some(rest) = id.strip_prefix("A.") else {
            return Err(ControlIdProblem::Malformed);
        };
        let parts: Vec<&str> = rest.split('.').collect();
        let numbers: Option<Vec<u8>> = parts.iter().map(|p| p.parse::<u8>().ok()).collect();
        let Some(numbers) = numbers else {
            return Err(ControlIdProblem::Malformed);
        };
        match numbers.as_slice() {
            // 2013 controls have three parts (A.12.6.1); 2022 controls have two, in themes 5-8.
            [theme, _, _] if (5..=18).contains(theme) => Err(ControlIdProblem::Iso2013),
            [theme, _] if !(5..=8).contains(theme) => Err(ControlIdProblem::NoSuchTheme),
            [theme, number] => {
                let size = THEME_SIZES
                    .iter()
                    .find(|(t, _)| t == theme)
                    .map(|(_, n)| *n)
                    .ok_or(ControlIdProblem::NotInCatalog)?;
                if *number == 0 || *number > size {
                    return Err(ControlIdProblem::NotInCatalog);
                }
                Ok(Self {
                    theme: *theme,
                    number: *number,
                })
            }
            _ => Err(ControlIdProblem::Malformed),
        }
    }

    /// The catalog entry for this id.
    pub fn control(self) -> &'static Control {
        catalog()
            .iter()
            .find(|c| c.id == self)
            .expect("a ControlId is only built for catalog ids")
    }

    /// The theme number: 5 organizational, 6 people, 7 physical, 8 technological.
    pub fn theme(self) -> u8 {
        self.theme
    }
}

impl fmt::Display for ControlId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A.{}.{}", self.theme, self.number)
    }
}

/// One Annex A:2022 control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    /// `A.5.15`.
    pub id: ControlId,
    /// `organizational`, `people`, `physical` or `technological`.
    pub theme: &'static str,
    /// `Access control`.
    pub title: &'static str,
}

/// All 93 controls in catalog order (A.5.1 .. A.8.34).
pub fn catalog() -> &'static [Control] {
    static CATALOG: OnceLock<Vec<Control>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut controls: Vec<Control> = CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut parts = line.splitn(3, ',');
                let id = parts.next().unwrap_or_default();
                let theme = parts.next().unwrap_or_default();
                let title = parts.next().unwrap_or_default().trim().trim_matches('"');
                Control {
                    id: ControlId::parse(id).expect("the embedded catalog holds valid ids"),
                    theme,
                    title,
                }
            })
            .collect();
        controls.sort_by_key(|c| c.id);
        controls
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_93_controls_in_four_themes() {
        assert_eq!(catalog().len(), 93);
        for (theme, size) in THEME_SIZES {
            assert_eq!(
                catalog().iter().filter(|c| c.id.theme() == theme).count(),
                size as usize
            );
        }
        assert_eq!(
            ControlId::parse("A.5.15").unwrap().control().title,
            "Access control"
        );
    }

    #[test]
    fn ids_parse_with_trailing_titles_and_refuse_2013_ids() {
        assert_eq!(
            ControlId::parse("A.8.28 Secure coding")
                .unwrap()
                .to_string(),
            "A.8.28"
        );
        assert_eq!(ControlId::parse("A.12.6.1"), Err(ControlIdProblem::Iso2013));
        assert_eq!(
            ControlId::parse("A.9.2"),
            Err(ControlIdProblem::NoSuchTheme)
        );
        assert_eq!(
            ControlId::parse("A.5.38"),
            Err(ControlIdProblem::NotInCatalog)
        );
        assert_eq!(ControlId::parse("5.1"), Err(ControlIdProblem::Malformed));
        assert!(ControlId::parse("A.5.2").unwrap() < ControlId::parse("A.5.15").unwrap());
    }

    #[test]
    fn a_two_part_id_outside_themes_5_to_8_is_not_called_a_2013_id() {
        let problem = ControlId::parse("A.9.99").expect_err("not a 2022 id");
        assert_eq!(problem, ControlIdProblem::NoSuchTheme);
        let text = problem.explain();
        assert!(!text.contains("2013"), "{text}");
        assert!(text.contains("themes are A.5 to A.8"), "{text}");
    }
}
