//! Master voting (2.5.2 `CheckAgreement` / `GatherMasterVotes`, spec
//! masterd-luxi 4.3): before the master daemon serves, the other nodes of
//! the configuration are asked, through `master_info`, whom their ssconf
//! names master.
//!
//! 2.5.2's rule is kept exactly: the local node does not vote; a failed or
//! malformed answer votes for "nobody"; with no node answering more than
//! any name gets, the vote is repeated (6 attempts, 10 s apart); otherwise
//! the top-voted name must be ours and have at least as many votes as all
//! the others together. Ties pass, as in 2.5.2.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::rpc::client::{Client, Node, NodeResult};

/// Attempts before giving up when most nodes do not answer.
pub const VOTE_ATTEMPTS: u32 = 6;
/// Pause between attempts.
pub const VOTE_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Votes per candidate, best first: `None` is "nobody" (failed answers).
/// Sorted by (votes, name) descending, so with equal counts a real name
/// comes before `None`, as Python sorts `None` lowest.
pub fn count_votes(answers: &[(String, NodeResult)]) -> Vec<(Option<String>, usize)> {
    let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for (_, result) in answers {
        let vote = match result {
            NodeResult::Ok(Value::Array(info)) if info.len() >= 3 => {
                info[2].as_str().map(str::to_string)
            }
            _ => None,
        };
        *counts.entry(vote).or_default() += 1;
    }
    let mut votes: Vec<(Option<String>, usize)> = counts.into_iter().collect();
    votes.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    votes
}

/// Why this node may not become master.
#[derive(Debug, PartialEq)]
pub enum VoteError {
    /// Most nodes did not answer, after every attempt.
    Inconsistent,
    /// Another node got the most votes.
    NotTopVoted {
        top: String,
        votes: usize,
        all: usize,
    },
    /// We are top-voted but fewer nodes agree than disagree.
    Outvoted { votes_for: usize, against: usize },
}

impl std::fmt::Display for VoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VoteError::Inconsistent => write!(
                f,
                "Cluster inconsistent, most of the nodes didn't answer after multiple \
                 retries. Aborting startup"
            ),
            VoteError::NotTopVoted { top, votes, all } => write!(
                f,
                "It seems we are not the master (top-voted node {top} with {votes} out of \
                 {all} votes)"
            ),
            VoteError::Outvoted { votes_for, against } => write!(
                f,
                "It seems we are not the master ({votes_for} votes for, {against} votes \
                 against)"
            ),
        }
    }
}

/// One evaluation of the votes: `Ok(true)` agreement, `Ok(false)` no
/// majority answered (try again), `Err` a definite no.
pub fn judge(votes: &[(Option<String>, usize)], me: &str) -> Result<bool, VoteError> {
    let Some((top, top_votes)) = votes.first() else {
        return Ok(true);
    };
    let Some(top) = top else {
        return Ok(false);
    };
    let all: usize = votes.iter().map(|(_, n)| n).sum();
    if top != me {
        return Err(VoteError::NotTopVoted {
            top: top.clone(),
            votes: *top_votes,
            all,
        });
    }
    if *top_votes < all - top_votes {
        return Err(VoteError::Outvoted {
            votes_for: *top_votes,
            against: all - top_votes,
        });
    }
    Ok(true)
}

/// Asks `others` (every node of the configuration but this one, offline
/// ones included) until they agree or the attempts run out. `pause` is
/// called between attempts (a sleep of [`VOTE_RETRY_DELAY`] in the daemon).
pub fn check_agreement(
    client: &Client,
    me: &str,
    others: &[Node],
    mut pause: impl FnMut(),
) -> Result<(), VoteError> {
    if others.is_empty() {
        return Ok(());
    }
    // Offline nodes are asked too, as 2.5.2 does.
    let ask: Vec<Node> = others
        .iter()
        .map(|n| Node {
            offline: false,
            ..n.clone()
        })
        .collect();
    for attempt in 1..=VOTE_ATTEMPTS {
        let answers = client.call(&ask, "master_info", &Value::Array(vec![]));
        let votes = count_votes(&answers);
        log::debug!("Master votes (attempt {attempt}): {votes:?}");
        if judge(&votes, me)? {
            return Ok(());
        }
        if attempt < VOTE_ATTEMPTS {
            log::warn!("Majority of nodes didn't answer, retrying in a few seconds");
            pause();
        }
    }
    Err(VoteError::Inconsistent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(master: &str) -> NodeResult {
        NodeResult::Ok(json!(["eth0", "192.0.2.1", master, 2]))
    }

    fn votes(list: &[NodeResult]) -> Vec<(Option<String>, usize)> {
        let answers: Vec<(String, NodeResult)> = list
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("n{i}"), r.clone()))
            .collect();
        count_votes(&answers)
    }

    #[test]
    fn a_single_node_cluster_agrees() {
        assert_eq!(judge(&[], "me"), Ok(true));
    }

    #[test]
    fn all_others_naming_me_agree() {
        let v = votes(&[answer("me"), answer("me")]);
        assert_eq!(v, vec![(Some("me".into()), 2)]);
        assert_eq!(judge(&v, "me"), Ok(true));
    }

    #[test]
    fn a_tie_with_failures_passes_as_in_2_5_2() {
        let v = votes(&[answer("me"), NodeResult::Error("down".into())]);
        assert_eq!(v[0], (Some("me".into()), 1));
        assert_eq!(judge(&v, "me"), Ok(true));
    }

    #[test]
    fn most_nodes_down_means_try_again() {
        let down = NodeResult::Error("down".into());
        let v = votes(&[answer("me"), down.clone(), down]);
        assert_eq!(judge(&v, "me"), Ok(false));
        // Malformed answers count as failures.
        let v = votes(&[
            NodeResult::Ok(json!(["eth0"])),
            NodeResult::Failed("x".into()),
        ]);
        assert_eq!(judge(&v, "me"), Ok(false));
    }

    #[test]
    fn another_top_voted_node_refuses() {
        let v = votes(&[answer("other"), answer("other"), answer("me")]);
        assert_eq!(
            judge(&v, "me"),
            Err(VoteError::NotTopVoted {
                top: "other".into(),
                votes: 2,
                all: 3
            })
        );
        assert_eq!(
            judge(&v, "me").unwrap_err().to_string(),
            "It seems we are not the master (top-voted node other with 2 out of 3 votes)"
        );
    }

    #[test]
    fn outvoted_by_the_rest_refuses() {
        let v = votes(&[answer("me"), answer("a"), answer("b")]);
        // Equal counts: sorted by name descending, "me" first.
        assert_eq!(v[0], (Some("me".into()), 1));
        assert_eq!(
            judge(&v, "me"),
            Err(VoteError::Outvoted {
                votes_for: 1,
                against: 2
            })
        );
    }
}
