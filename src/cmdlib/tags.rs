//! Tags of the cluster, nodes, node groups and instances (2.5.2 `TagsLU`,
//! `LUTagsGet`, `LUTagsSet`, `LUTagsDel`, `TaggableObject`).
//!
//! As 2.5.2: a tag is 1 to [`MAX_TAG_LEN`] characters of `[A-Za-z0-9_.+*/:@-]`
//! (Python 2's `\w` without `re.UNICODE` is ASCII), an object holds at most
//! [`MAX_TAGS_PER_OBJ`] tags, tags are a set. Node and instance names are
//! expanded and locked (shared for a read), node groups looked up by name
//! or UUID without a lock, the cluster needs only the shared BGL.
//! Differences: the tags are kept in the order they were added (2.5.2 kept
//! a Python set and returned it in hash order), and a failed change leaves
//! nothing half-done in memory.
#![forbid(unsafe_code)]

use serde_json::Value;

use super::{Env, LogicalUnit, LuResult};
use crate::config;
use crate::errors::{GanetiError, ECODE_INVAL, ECODE_NOENT};
use crate::locking::{Level, Names};
use crate::objects::ConfigData;
use crate::opcodes::{TagKind, TagsChange, TagsGet};

/// `MAX_TAG_LEN`.
pub const MAX_TAG_LEN: usize = 128;
/// `MAX_TAGS_PER_OBJ`.
pub const MAX_TAGS_PER_OBJ: usize = 4096;

fn tag_error(msg: impl Into<String>) -> GanetiError {
    GanetiError::msg("TagError", msg)
}

/// `TaggableObject.ValidateTag`.
pub fn validate_tag(tag: &str) -> Result<(), GanetiError> {
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(tag_error(format!(
            "Tag too long (>{MAX_TAG_LEN} characters)"
        )));
    }
    if tag.is_empty() {
        return Err(tag_error("Tags cannot be empty"));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || "_.+*/:@-".contains(c);
    if !tag.chars().all(valid) {
        return Err(tag_error("Tag contains invalid characters"));
    }
    Ok(())
}

/// What a tags opcode does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Get,
    Set,
    Del,
}

/// The object whose tags are read or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Cluster,
    Node(String),
    Instance(String),
    Group(String),
}

/// `TagsLU` and its three subclasses.
pub struct TagsLu {
    mode: Mode,
    kind: TagKind,
    name: Option<String>,
    tags: Vec<String>,
    target: Option<Target>,
}

impl TagsLu {
    pub fn get(op: &TagsGet) -> TagsLu {
        TagsLu {
            mode: Mode::Get,
            kind: op.kind,
            name: op.name.clone(),
            tags: Vec::new(),
            target: None,
        }
    }

    pub fn set(op: &TagsChange) -> TagsLu {
        TagsLu::change(Mode::Set, op)
    }

    pub fn del(op: &TagsChange) -> TagsLu {
        TagsLu::change(Mode::Del, op)
    }

    fn change(mode: Mode, op: &TagsChange) -> TagsLu {
        TagsLu {
            mode,
            kind: op.kind,
            name: op.name.clone(),
            tags: op.tags.clone(),
            target: None,
        }
    }

    /// The name as 2.5.2 would have printed it (`None` when absent).
    fn name_text(&self) -> &str {
        self.name.as_deref().unwrap_or("None")
    }
}

fn tags_of<'c>(cfg: &'c ConfigData, target: &Target) -> Option<&'c [String]> {
    let tags = match target {
        Target::Cluster => &cfg.cluster.tags,
        Target::Node(n) => &cfg.nodes.get(n)?.tags,
        Target::Instance(i) => &cfg.instances.get(i)?.tags,
        Target::Group(g) => &cfg.nodegroups.get(g)?.tags,
    };
    Some(tags.as_deref().unwrap_or(&[]))
}

fn tags_of_mut<'c>(cfg: &'c mut ConfigData, target: &Target) -> Option<&'c mut Vec<String>> {
    let tags = match target {
        Target::Cluster => &mut cfg.cluster.tags,
        Target::Node(n) => &mut cfg.nodes.get_mut(n)?.tags,
        Target::Instance(i) => &mut cfg.instances.get_mut(i)?.tags,
        Target::Group(g) => &mut cfg.nodegroups.get_mut(g)?.tags,
    };
    Some(tags.get_or_insert_with(Vec::new))
}

/// `cfg.Update(target)`: the object's serial number and time (a node also
/// bumps the cluster's).
fn touch(cfg: &mut ConfigData, target: &Target) -> bool {
    let now = config::now();
    match target {
        Target::Cluster => {
            cfg.touch_cluster(now);
            true
        }
        Target::Node(n) => cfg.touch_node(n, now),
        Target::Instance(i) => cfg.touch_instance(i, now),
        Target::Group(g) => cfg.touch_group(g, now),
    }
}

/// The object disappeared between the lock and the change (a group has no
/// lock in 2.5.2).
fn gone(target: &Target) -> GanetiError {
    let what = match target {
        Target::Cluster => "The cluster".to_string(),
        Target::Node(n) => format!("Node '{n}'"),
        Target::Instance(i) => format!("Instance '{i}'"),
        Target::Group(g) => format!("Node group '{g}'"),
    };
    GanetiError::prereq(format!("{what} not found"), ECODE_NOENT)
}

impl LogicalUnit for TagsLu {
    fn expand_names(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        let name = self.name_text().to_string();
        let target = {
            let cfg = env.cfg().read();
            match self.kind {
                TagKind::Cluster => Target::Cluster,
                TagKind::Node => Target::Node(config::expand_node_name(&cfg, &name)?),
                TagKind::Instance => Target::Instance(config::expand_instance_name(&cfg, &name)?),
                TagKind::NodeGroup => Target::Group(lookup_group(&cfg, self.name.as_deref())?),
            }
        };
        match &target {
            Target::Node(n) => {
                env.locks
                    .needed
                    .insert(Level::Node, Names::List(vec![n.clone()]));
                self.name = Some(n.clone());
            }
            Target::Instance(i) => {
                env.locks
                    .needed
                    .insert(Level::Instance, Names::List(vec![i.clone()]));
                self.name = Some(i.clone());
            }
            Target::Cluster | Target::Group(_) => {}
        }
        self.target = Some(target);
        if self.mode == Mode::Get {
            env.locks.share_all();
        }
        Ok(())
    }

    fn check_prereq(&mut self, env: &mut Env<'_>) -> Result<(), GanetiError> {
        let target = self.target.clone().ok_or_else(|| wrong_kind(self.kind))?;
        let cfg = env.cfg().read();
        let current = tags_of(&cfg, &target).ok_or_else(|| gone(&target))?;
        match self.mode {
            Mode::Get => {}
            Mode::Set => {
                for tag in &self.tags {
                    validate_tag(tag)?;
                }
            }
            Mode::Del => {
                for tag in &self.tags {
                    validate_tag(tag)?;
                }
                let mut missing: Vec<&String> =
                    self.tags.iter().filter(|t| !current.contains(t)).collect();
                missing.sort();
                missing.dedup();
                if !missing.is_empty() {
                    let names: Vec<String> = missing.iter().map(|t| format!("'{t}'")).collect();
                    return Err(GanetiError::prereq(
                        format!("Tag(s) {} not found", names.join(", ")),
                        ECODE_NOENT,
                    ));
                }
            }
        }
        Ok(())
    }

    fn exec(&mut self, env: &mut Env<'_>) -> Result<LuResult, GanetiError> {
        let target = self.target.clone().ok_or_else(|| wrong_kind(self.kind))?;
        match self.mode {
            Mode::Get => {
                let cfg = env.cfg().read();
                let tags = tags_of(&cfg, &target).ok_or_else(|| gone(&target))?;
                Ok(LuResult::Value(Value::from(tags.to_vec())))
            }
            Mode::Set => {
                let tags = self.tags.clone();
                env.update_config(|cfg| {
                    let current = tags_of_mut(cfg, &target).ok_or_else(|| gone(&target))?;
                    for tag in &tags {
                        add_tag(current, tag).map_err(|e| {
                            GanetiError::exec(format!("Error while setting tag: {e}"))
                        })?;
                    }
                    touch(cfg, &target);
                    Ok(())
                })?;
                Ok(LuResult::Value(Value::Null))
            }
            Mode::Del => {
                let tags = self.tags.clone();
                env.update_config(|cfg| {
                    let current = tags_of_mut(cfg, &target).ok_or_else(|| gone(&target))?;
                    for tag in &tags {
                        remove_tag(current, tag)?;
                    }
                    touch(cfg, &target);
                    Ok(())
                })?;
                Ok(LuResult::Value(Value::Null))
            }
        }
    }

    fn store_input(&self, input: &mut serde_json::Map<String, Value>) {
        if matches!(self.kind, TagKind::Node | TagKind::Instance) {
            if let Some(name) = &self.name {
                input.insert("name".into(), Value::String(name.clone()));
            }
        }
    }
}

/// `TaggableObject.AddTag`.
fn add_tag(tags: &mut Vec<String>, tag: &str) -> Result<(), GanetiError> {
    validate_tag(tag)?;
    if tags.len() >= MAX_TAGS_PER_OBJ {
        return Err(tag_error("Too many tags"));
    }
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
    Ok(())
}

/// `TaggableObject.RemoveTag`.
fn remove_tag(tags: &mut Vec<String>, tag: &str) -> Result<(), GanetiError> {
    validate_tag(tag)?;
    let before = tags.len();
    tags.retain(|t| t != tag);
    if tags.len() == before {
        return Err(tag_error("Tag not found"));
    }
    Ok(())
}

/// `LookupNodeGroup`: a group name or UUID; `None` is the only group.
fn lookup_group(cfg: &ConfigData, target: Option<&str>) -> Result<String, GanetiError> {
    let Some(target) = target else {
        return match cfg.nodegroups.keys().next() {
            Some(uuid) if cfg.nodegroups.len() == 1 => Ok(uuid.clone()),
            _ => Err(GanetiError::new(
                "OpPrereqError",
                vec![Value::String(
                    "More than one node group exists. Target group must be specified \
                     explicitely."
                        .into(),
                )],
            )),
        };
    };
    cfg.lookup_group(target)
        .map(str::to_string)
        .ok_or_else(|| GanetiError::prereq(format!("Node group '{target}' not found"), ECODE_NOENT))
}

fn wrong_kind(kind: TagKind) -> GanetiError {
    GanetiError::prereq(format!("Wrong tag type requested ({kind:?})"), ECODE_INVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_validation_as_2_5_2() {
        assert!(validate_tag("web").is_ok());
        assert!(validate_tag("a.b+c*d/e:f@g-h_1").is_ok());
        let msg = |t: &str| validate_tag(t).unwrap_err().to_string();
        assert_eq!(msg(""), "Tags cannot be empty");
        assert_eq!(msg("a b"), "Tag contains invalid characters");
        assert_eq!(msg("ä"), "Tag contains invalid characters");
        assert_eq!(msg("a\n"), "Tag contains invalid characters");
        assert_eq!(validate_tag("").unwrap_err().class, "TagError");
    }

    #[test]
    fn tag_length_limit() {
        assert!(validate_tag(&"a".repeat(MAX_TAG_LEN)).is_ok());
        assert_eq!(
            validate_tag(&"a".repeat(MAX_TAG_LEN + 1))
                .unwrap_err()
                .to_string(),
            "Tag too long (>128 characters)"
        );
    }

    #[test]
    fn tags_per_object_limit() {
        let mut tags: Vec<String> = (0..MAX_TAGS_PER_OBJ - 1).map(|i| format!("t{i}")).collect();
        add_tag(&mut tags, "last").unwrap();
        assert_eq!(tags.len(), MAX_TAGS_PER_OBJ);
        assert_eq!(
            add_tag(&mut tags, "one-more").unwrap_err().to_string(),
            "Too many tags"
        );
        // Adding an existing tag to a full set is still refused, as 2.5.2.
        assert!(add_tag(&mut tags, "last").is_err());
    }

    #[test]
    fn tags_are_a_set() {
        let mut tags = Vec::new();
        add_tag(&mut tags, "a").unwrap();
        add_tag(&mut tags, "a").unwrap();
        assert_eq!(tags, vec!["a".to_string()]);
        remove_tag(&mut tags, "a").unwrap();
        assert_eq!(
            remove_tag(&mut tags, "a").unwrap_err().to_string(),
            "Tag not found"
        );
    }
}
