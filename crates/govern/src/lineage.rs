//! Lineage's own rules: the periods in which an alias named a version, and which
//! version held an alias (the champion, say) at a given time. Built from the
//! registry's alias history; the facts around them (runs, tables, sources,
//! predictions, approvals) are gathered by the loop's room (`freshet_control::lineage`).

use serde::Serialize;

/// One move of an alias, as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasMove {
    pub alias: String,
    /// The version named from then on; `None`: the alias was removed.
    pub version: Option<i64>,
    /// When (Unix ms); `None`: set before the registry kept its history.
    pub at_ms: Option<i64>,
}

/// A stretch of time in which `alias` named `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    pub alias: String,
    pub version: i64,
    /// `None`: it began before the registry kept its alias history.
    pub from_ms: Option<i64>,
    /// `None`: it still does.
    pub to_ms: Option<i64>,
    /// Who signed the promotion off, when an approval was needed and given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

impl Period {
    /// Whether the period covers `t_ms`. A period whose start is unknown covers no
    /// time: lineage says what it knows, not what is likely.
    pub fn covers(&self, t_ms: i64) -> bool {
        self.from_ms.is_some_and(|f| f <= t_ms) && self.to_ms.is_none_or(|e| t_ms < e)
    }
}

/// The periods of every alias, in the order they began. `moves` is the history,
/// oldest first.
pub fn periods(moves: &[AliasMove]) -> Vec<Period> {
    let mut open: Vec<Period> = Vec::new();
    let mut done: Vec<Period> = Vec::new();
    for m in moves {
        if let Some(i) = open.iter().position(|p| p.alias == m.alias) {
            let mut p = open.remove(i);
            // A move without a time ends the period at an unknown time: keep the
            // start, leave the end open only if nothing later is known.
            p.to_ms = m.at_ms.or(p.from_ms);
            done.push(p);
        }
        if let Some(version) = m.version {
            open.push(Period {
                alias: m.alias.clone(),
                version,
                from_ms: m.at_ms,
                to_ms: None,
                approved_by: None,
            });
        }
    }
    done.extend(open);
    done
}

/// The period in which `alias` named a version at `t_ms`, if the history knows.
pub fn holder_at<'a>(periods: &'a [Period], alias: &str, t_ms: i64) -> Option<&'a Period> {
    periods
        .iter()
        .filter(|p| p.alias == alias)
        .find(|p| p.covers(t_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(alias: &str, version: Option<i64>, at: Option<i64>) -> AliasMove {
        AliasMove {
            alias: alias.into(),
            version,
            at_ms: at,
        }
    }

    #[test]
    fn periods_follow_each_alias_and_answer_who_held_it_when() {
        let h = [
            mv("champion", Some(1), Some(100)),
            mv("challenger", Some(2), Some(150)),
            mv("champion", Some(2), Some(200)),
            mv("challenger", None, Some(200)),
            mv("champion", None, Some(300)),
            mv("champion", Some(3), Some(400)),
        ];
        let p = periods(&h);
        let champion: Vec<(i64, Option<i64>, Option<i64>)> = p
            .iter()
            .filter(|p| p.alias == "champion")
            .map(|p| (p.version, p.from_ms, p.to_ms))
            .collect();
        assert_eq!(
            champion,
            [
                (1, Some(100), Some(200)),
                (2, Some(200), Some(300)),
                (3, Some(400), None)
            ]
        );
        assert_eq!(holder_at(&p, "champion", 99), None);
        assert_eq!(holder_at(&p, "champion", 100).map(|p| p.version), Some(1));
        assert_eq!(holder_at(&p, "champion", 199).map(|p| p.version), Some(1));
        assert_eq!(holder_at(&p, "champion", 200).map(|p| p.version), Some(2));
        assert_eq!(holder_at(&p, "champion", 350), None, "no champion then");
        assert_eq!(
            holder_at(&p, "champion", 10_000).map(|p| p.version),
            Some(3)
        );
        assert_eq!(holder_at(&p, "challenger", 160).map(|p| p.version), Some(2));
    }

    #[test]
    fn a_start_before_the_history_is_never_guessed() {
        let p = periods(&[
            mv("champion", Some(1), None),
            mv("champion", Some(2), Some(500)),
        ]);
        assert_eq!((p[0].from_ms, p[0].to_ms), (None, Some(500)));
        assert_eq!(holder_at(&p, "champion", 400), None);
        assert_eq!(holder_at(&p, "champion", 600).map(|p| p.version), Some(2));
    }
}
