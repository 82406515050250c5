//! The cluster configuration library against real 2.5.2 data and real node
//! daemons: the sample `config.data` written by 2.5.2 round-trips byte for
//! byte and gives the sample ssconf files, upgrade defaults, version and
//! hostile-input checks, the config writer's safe write, and distribution
//! to master candidates over TLS.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use ganeti::config::{self, ConfigWriter, InitParams};
use ganeti::objects::ConfigData;
use ganeti::paths::Paths;
use ganeti::rpc::client::Client;
use serde_json::{json, Value};

const SAMPLE: &str = include_str!("samples/ganeti-2.5.2/config.data");
const SAMPLE_SSCONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/samples/ganeti-2.5.2/ssconf"
);

fn sample_value() -> Value {
    config::parse_json(SAMPLE).unwrap()
}

/// The sample with `edit` applied to its JSON, as text.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v = sample_value();
    edit(&mut v);
    config::dump_json_indented(&v)
}

fn remove(v: &mut Value, path: &[&str], key: &str) {
    let mut cur = v;
    for p in path {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().remove(key).unwrap();
}

/// What noded writes for an ssconf value: a newline added to a non-empty
/// value without one.
fn ssconf_file_bytes(value: &str) -> Vec<u8> {
    let mut v = value.to_string();
    if !v.is_empty() && !v.ends_with('\n') {
        v.push('\n');
    }
    v.into_bytes()
}

fn sample_ssconf_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(SAMPLE_SSCONF)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name.strip_prefix("ssconf_").unwrap().to_string();
            (key, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn sample_round_trips_byte_for_byte() {
    let cfg = config::parse(SAMPLE).unwrap();
    assert_eq!(cfg.version, 2_050_000);
    assert_eq!(cfg.serial_no, 17);
    assert_eq!(cfg.cluster.cluster_name, "cluster.g25lab.test");
    assert_eq!(cfg.cluster.serial_no, 8);
    assert_eq!(cfg.nodes["node1.g25lab.test"].primary_ip, "10.98.0.1");
    assert_eq!(cfg.instances.len(), 2);
    assert_eq!(cfg.nodegroups.len(), 1);
    assert!(cfg.extra.is_empty() && cfg.cluster.extra.is_empty());
    let text = config::serialize(&cfg);
    assert_eq!(text, SAMPLE);
    // Parsing our own output changes nothing either.
    assert_eq!(config::parse(&text).unwrap(), cfg);
}

#[test]
fn sample_ssconf_values_are_the_sample_files() {
    let cfg = config::parse(SAMPLE).unwrap();
    let values = config::ssconf_values(&cfg);
    let files = sample_ssconf_files();
    assert_eq!(files.len(), 21);
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        files.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for (key, bytes) in &files {
        assert_eq!(
            ssconf_file_bytes(&values[key]),
            *bytes,
            "ssconf_{key} differs"
        );
    }
}

#[test]
fn missing_optional_keys_get_the_upgrade_defaults() {
    let text = edited(|v| {
        for key in [
            "os_hvp",
            "osparams",
            "ndparams",
            "beparams",
            "nicparams",
            "modify_etc_hosts",
            "modify_ssh_setup",
            "maintain_node_health",
            "uid_pool",
            "default_iallocator",
            "reserved_lvs",
            "hidden_os",
            "blacklisted_os",
            "primary_ip_family",
            "prealloc_wipe_disks",
            "shared_file_storage_dir",
        ] {
            remove(v, &["cluster"], key);
        }
        // Partial hypervisor parameters are completed; a null attribute is
        // the same as a missing one.
        remove(v, &["cluster", "hvparams", "kvm"], "kernel_path");
        remove(v, &["cluster", "hvparams"], "xen-pvm");
        v["cluster"]["default_bridge"] = json!("br-old");
        v["cluster"]["default_hypervisor"] = json!("kvm");
        v["cluster"]["mac_prefix"] = Value::Null;
        let node = &mut v["nodes"]["node1.g25lab.test"];
        for key in ["master_capable", "vm_capable", "ndparams", "powered"] {
            node.as_object_mut().unwrap().remove(key);
        }
        let group = &mut v["nodegroups"]["738a7d11-f338-4cdc-8833-56f3fb7ba540"];
        for key in ["ndparams", "serial_no", "alloc_policy", "mtime"] {
            group.as_object_mut().unwrap().remove(key);
        }
        group["members"] = json!(["node1.g25lab.test"]);
        let inst = &mut v["instances"]["inst1.g25lab.test"];
        inst.as_object_mut().unwrap().remove("osparams");
        inst["hvparams"] = json!({"migration_port": 1, "migration_mode": "x", "acpi": false});
    });
    let before = config::now();
    let cfg = config::parse(&text).unwrap();
    let c = &cfg.cluster;
    assert!(c.os_hvp.is_empty() && c.osparams.is_empty());
    assert_eq!(
        c.ndparams,
        *json!({"oob_program": null}).as_object().unwrap()
    );
    assert_eq!(
        serde_json::to_value(&c.beparams).unwrap(),
        json!({"default": {"auto_balance": true, "memory": 128, "vcpus": 1}})
    );
    // No nicparams at all: the old default bridge becomes the link.
    assert_eq!(
        serde_json::to_value(&c.nicparams).unwrap(),
        json!({"default": {"link": "br-old", "mode": "bridged"}})
    );
    assert!(c.modify_etc_hosts && c.modify_ssh_setup && !c.maintain_node_health);
    assert!(c.uid_pool.is_empty() && c.reserved_lvs.is_empty());
    assert!(c.hidden_os.is_empty() && c.blacklisted_os.is_empty());
    assert_eq!(c.default_iallocator, "");
    assert_eq!(c.primary_ip_family, 2);
    assert!(!c.prealloc_wipe_disks);
    assert_eq!(c.shared_file_storage_dir, "");
    assert_eq!(c.mac_prefix, None);
    assert_eq!(c.enabled_hypervisors, ["kvm", "fake"]);
    // Each hypervisor present is completed with 2.5.2's defaults; one
    // left out stays out (2.5.2 fills only the entries it finds).
    let mut expected = sample_value()["cluster"]["hvparams"].clone();
    remove(&mut expected, &[], "xen-pvm");
    assert_eq!(serde_json::to_value(&c.hvparams).unwrap(), expected);
    // Without any hvparams, every hypervisor gets its defaults.
    let cfg2 = config::parse(&edited(|v| remove(v, &["cluster"], "hvparams"))).unwrap();
    assert_eq!(
        serde_json::to_value(&cfg2.cluster.hvparams).unwrap(),
        sample_value()["cluster"]["hvparams"]
    );
    let node = &cfg.nodes["node1.g25lab.test"];
    assert!(node.master_capable && node.vm_capable && node.powered);
    assert!(node.ndparams.is_empty());
    let group = &cfg.nodegroups["738a7d11-f338-4cdc-8833-56f3fb7ba540"];
    assert_eq!(
        (group.serial_no, group.alloc_policy.as_str()),
        (1, "preferred")
    );
    assert!(group.mtime >= before && group.ndparams.is_empty());
    assert!(group.extra.is_empty(), "members must not be kept");
    let inst = &cfg.instances["inst1.g25lab.test"];
    assert!(inst.osparams.is_empty());
    assert_eq!(inst.hvparams, *json!({"acpi": false}).as_object().unwrap());
    // Written back, the defaults are there and the legacy keys are gone.
    let out = config::parse_json(&config::serialize(&cfg)).unwrap();
    assert!(out["cluster"].get("default_bridge").is_none());
    assert!(out["cluster"].get("default_hypervisor").is_none());
    assert!(out["cluster"].get("mac_prefix").is_none());
    assert_eq!(out["cluster"]["uid_pool"], json!([]));
}

#[test]
fn drbd_disks_get_the_default_helper() {
    let text = edited(|v| {
        v["instances"]["inst2.g25lab.test"]["disks"] = json!([{
            "dev_type": "drbd8", "iv_name": "disk/0", "mode": "rw", "size": 64,
            "logical_id": ["node1.g25lab.test", "node2.g25lab.test", 11000, 0, 0, "s"],
            "children": [
                {"dev_type": "lvm", "logical_id": ["xenvg", "u.disk0_data"], "size": 64},
                {"dev_type": "lvm", "logical_id": ["xenvg", "u.disk0_meta"], "size": 128}
            ]
        }]);
    });
    let cfg = config::parse(&text).unwrap();
    assert_eq!(
        cfg.cluster.drbd_usermode_helper.as_deref(),
        Some("/bin/true")
    );
    let sample = config::parse(SAMPLE).unwrap();
    assert_eq!(sample.cluster.drbd_usermode_helper, None);
}

#[test]
fn wrong_version_is_refused_with_2_5_2s_message() {
    for (version, found) in [(json!(2040000), "2.4.0"), (json!(3000000), "3.0.0")] {
        let text = edited(|v| v["version"] = version.clone());
        let err = config::parse(&text).unwrap_err();
        assert_eq!(err.class, "ConfigVersionMismatch");
        assert_eq!(err.args, vec![json!(2050000), version.clone()]);
        assert_eq!(
            config::open_error_message(&err),
            format!(
                "Configuration version mismatch. The current Ganeti software expects version \
                 2.5.0, but the on-disk configuration file has version {found}. This is likely \
                 the result of upgrading the software without running the upgrade procedure. \
                 Please contact your cluster administrator or complete the upgrade using the \
                 cfgupgrade utility, after reading the upgrade notes."
            )
        );
    }
    let text = edited(|v| remove(v, &[], "version"));
    let err = config::parse(&text).unwrap_err();
    assert_eq!(err.args, vec![json!(2050000), Value::Null]);
}

#[test]
fn unknown_keys_survive_a_round_trip() {
    let text = edited(|v| {
        v["networks"] = json!({"n1": {"name": "net"}});
        v["cluster"]["ipolicy"] = json!({"std": {"memory-size": 128}});
        v["nodes"]["node1.g25lab.test"]["hv_state_static"] = json!({});
        v["nodegroups"]["738a7d11-f338-4cdc-8833-56f3fb7ba540"]["networks"] = json!({});
        let inst = &mut v["instances"]["inst2.g25lab.test"];
        inst["disks_active"] = json!(true);
        inst["nics"][0]["network"] = json!("n1");
        inst["disks"][0]["params"] = json!({"x": 1.5});
    });
    let cfg = config::parse(&text).unwrap();
    assert_eq!(cfg.extra["networks"], json!({"n1": {"name": "net"}}));
    assert_eq!(config::serialize(&cfg), text);
}

#[test]
fn hostile_or_broken_files_are_refused() {
    let refused = |text: &str, needle: &str| {
        let err = config::parse(text).unwrap_err();
        assert_eq!(err.class, "ConfigurationError", "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    };
    refused(
        &edited(|v| remove(v, &["cluster"], "rsahostkeypub")),
        "Incomplete configuration (missing cluster.rsahostkeypub)",
    );
    refused(
        &edited(|v| v["nodes"]["node1.g25lab.test"]["primary_ip"] = json!(5)),
        "Invalid node 'node1.g25lab.test' in the configuration",
    );
    refused(
        &edited(|v| v["instances"] = json!([])),
        "Invalid instances in the configuration: expected an object, got a list",
    );
    refused(
        &edited(|v| v["cluster"]["hvparams"]["kvm"] = json!("x")),
        "Invalid cluster hvparams of 'kvm'",
    );
    refused(
        &edited(|v| v["instances"]["inst2.g25lab.test"]["disks"][0] = json!(7)),
        "Invalid disk 0 of instance 'inst2.g25lab.test'",
    );
    refused(
        &edited(|v| remove(v, &["cluster"], "master_node")),
        "missing field `master_node`",
    );
    refused("[1, 2]", "expected an object, got a list");
    refused(&SAMPLE[..SAMPLE.len() / 2], "invalid JSON");
    refused(&SAMPLE.replace("\"lab\"", "\"\\ud800\""), "lone surrogate");
    refused(
        &SAMPLE.replace("10999", "99999999999999999999"),
        "out of range",
    );

    // Size: the limit itself is read, one byte more is not.
    let pad = config::MAX_CONFIG_SIZE - SAMPLE.len();
    let at_limit = format!("{}{}", " ".repeat(pad), SAMPLE);
    assert_eq!(at_limit.len(), config::MAX_CONFIG_SIZE);
    assert!(config::parse(&at_limit).is_ok());
    refused(&format!(" {at_limit}"), "larger than 16777216 bytes");

    // Depth: the limit in the unknown part of a file, and one more.
    let deep = |n: usize| {
        let inner = format!("{}{}", "[".repeat(n - 1), "]".repeat(n - 1));
        SAMPLE.replacen("{\n", &format!("{{\n  \"deep\": {inner},\n"), 1)
    };
    assert!(config::parse(&deep(config::MAX_JSON_DEPTH)).is_ok());
    refused(
        &deep(config::MAX_JSON_DEPTH + 1),
        "nested deeper than 64 levels",
    );
}

#[test]
fn names_and_parameters_for_logical_units() {
    let cfg = config::parse(SAMPLE).unwrap();
    assert_eq!(
        config::expand_node_name(&cfg, "node1").unwrap(),
        "node1.g25lab.test"
    );
    assert_eq!(
        config::expand_instance_name(&cfg, "INST2").unwrap(),
        "inst2.g25lab.test"
    );
    let err = config::expand_instance_name(&cfg, "inst").unwrap_err();
    assert_eq!(
        err.encode(),
        json!([
            "OpPrereqError",
            ["Instance 'inst' not known", "unknown_entity"]
        ])
    );
    let err = config::expand_node_name(&cfg, "node2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "('Node 'node2' not known', 'unknown_entity')"
    );

    let inst = &cfg.instances["inst1.g25lab.test"];
    let d = config::instance_rpc_dict(&cfg.cluster, inst, None, None, None);
    assert_eq!(d["hvparams"], json!({}));
    assert_eq!(
        d["beparams"],
        json!({"auto_balance": true, "memory": 128, "vcpus": 1})
    );
    assert_eq!(d["osparams"], json!({}));
    assert_eq!(
        d["nics"][0]["nicparams"],
        json!({"link": "g25br0", "mode": "bridged"})
    );
    assert_eq!(d["name"], "inst1.g25lab.test");

    // A kvm instance with overrides at every level.
    let mut cfg = cfg;
    cfg.cluster.os_hvp.insert(
        "lab".into(),
        [(
            "kvm".to_string(),
            json!({"kernel_args": "console=ttyS0"})
                .as_object()
                .unwrap()
                .clone(),
        )]
        .into(),
    );
    cfg.cluster.osparams.insert(
        "lab".into(),
        json!({"a": "base", "b": "base"})
            .as_object()
            .unwrap()
            .clone(),
    );
    cfg.cluster.osparams.insert(
        "lab+v".into(),
        json!({"b": "variant"}).as_object().unwrap().clone(),
    );
    let mut inst = cfg.instances["inst1.g25lab.test"].clone();
    inst.hypervisor = Some("kvm".into());
    inst.os = Some("lab+v".into());
    inst.hvparams = json!({"acpi": false}).as_object().unwrap().clone();
    inst.beparams = json!({"memory": 512}).as_object().unwrap().clone();
    inst.osparams = json!({"c": "inst"}).as_object().unwrap().clone();
    inst.nics[0].nicparams = json!({"link": "br9"}).as_object().unwrap().clone();
    let bep = json!({"vcpus": 4}).as_object().unwrap().clone();
    let d = config::instance_rpc_dict(&cfg.cluster, &inst, None, Some(&bep), None);
    assert_eq!(d["hvparams"].as_object().unwrap().len(), 35);
    assert_eq!(d["hvparams"]["acpi"], false);
    assert_eq!(d["hvparams"]["kernel_path"], "/boot/vmlinuz-2.6-kvmU");
    assert_eq!(d["hvparams"]["migration_port"], 8102);
    assert_eq!(
        d["beparams"],
        json!({"auto_balance": true, "memory": 512, "vcpus": 4})
    );
    // os_hvp is keyed by the full OS name, so "lab" does not apply to "lab+v".
    assert_eq!(d["hvparams"]["kernel_args"], "ro");
    assert_eq!(
        d["osparams"],
        json!({"a": "base", "b": "variant", "c": "inst"})
    );
    assert_eq!(
        d["nics"][0]["nicparams"],
        json!({"link": "br9", "mode": "bridged"})
    );
}

// ---------------------------------------------------------------------------
// The config writer
// ---------------------------------------------------------------------------

const LOCAL: &str = "node1.g25lab.test";

/// A root holding the sample as its config.data.
fn root_with_sample(tag: &str) -> (Root, Paths) {
    let root = Root::new(tag);
    let paths = Paths::with_root(&root.dir);
    std::fs::write(paths.config_data(), SAMPLE).unwrap();
    (root, paths)
}

fn on_disk(paths: &Paths) -> ConfigData {
    config::parse(&std::fs::read_to_string(paths.config_data()).unwrap()).unwrap()
}

#[test]
fn writer_bumps_serials_and_writes_atomically() {
    let (_root, paths) = root_with_sample("cfg-write");
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    // Nothing to upgrade in a 2.5.2 file: it is not rewritten on open.
    assert_eq!(w.write_count(), 0);
    assert_eq!(
        std::fs::read_to_string(paths.config_data()).unwrap(),
        SAMPLE
    );
    assert_eq!(w.read().serial_no, 17);

    let before = config::now();
    let got = w
        .update(|cfg| {
            cfg.cluster.tags = Some(vec!["web".into()]);
            cfg.touch_cluster(config::now());
            Ok(42)
        })
        .unwrap();
    assert_eq!(got, 42);
    assert_eq!(w.write_count(), 1);
    let disk = on_disk(&paths);
    assert_eq!(disk.serial_no, 18);
    assert_eq!(disk.cluster.serial_no, 9);
    assert!(disk.mtime >= before);
    assert_eq!(disk.cluster.tags, Some(vec!["web".to_string()]));
    assert_eq!(disk, *w.read());
    let meta = std::fs::metadata(paths.config_data()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(paths.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.data"]);

    // A failing change writes nothing and changes nothing in memory.
    let err = w
        .update(|cfg| -> Result<(), _> {
            cfg.cluster.cluster_name = "changed".into();
            Err(ganeti::errors::GanetiError::exec("no"))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "no");
    assert_eq!(w.write_count(), 1);
    assert_eq!(w.read().cluster.cluster_name, "cluster.g25lab.test");
    assert_eq!(on_disk(&paths).serial_no, 18);

    // Ports: from the pool first, then above the highest used one.
    w.update(|cfg| {
        cfg.cluster.tcpudp_port_pool = vec![11005];
        Ok(())
    })
    .unwrap();
    assert_eq!(w.allocate_port().unwrap(), 11005);
    assert_eq!(w.allocate_port().unwrap(), 11000);
    assert_eq!(on_disk(&paths).cluster.highest_used_port, Some(11000));
    w.update(|cfg| {
        cfg.cluster.highest_used_port = Some(14997);
        Ok(())
    })
    .unwrap();
    assert_eq!(w.allocate_port().unwrap(), 14998);
    let err = w.allocate_port().unwrap_err();
    assert_eq!(
        err.to_string(),
        "The highest used port is greater than 14999. Aborting."
    );

    // Generated MACs avoid the used and reserved ones.
    let mac = w.generate_mac("job-1").unwrap();
    assert!(mac.starts_with("aa:00:00:"));
    assert!(!w.read().all_macs().contains(&mac.as_str()));
    assert_eq!(
        w.reserve_mac(&mac, "job-2").unwrap_err().to_string(),
        format!("Duplicate reservation for resource '{mac}'")
    );
    assert_eq!(
        w.reserve_mac("aa:00:00:5e:fe:42", "job-2")
            .unwrap_err()
            .to_string(),
        "mac already in use"
    );
    w.drop_reservations("job-1");
    w.reserve_mac(&mac, "job-2").unwrap();
    let id = w.generate_unique_id("job-2").unwrap();
    assert_eq!(id.len(), 36);
}

#[test]
fn writer_refuses_a_file_changed_underneath() {
    let modified = "The configuration file has been modified since the last write, cannot update";
    let (_root, paths) = root_with_sample("cfg-modified");
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    w.update(|_| Ok(())).unwrap();

    // Touched: a newer modification time.
    let f = std::fs::File::options()
        .append(true)
        .open(paths.config_data())
        .unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    drop(f);
    let text = std::fs::read_to_string(paths.config_data()).unwrap();
    let err = w.update(|_| Ok(())).unwrap_err();
    assert_eq!(
        (err.class, err.to_string().as_str()),
        ("ConfigurationError", modified)
    );
    assert_eq!(std::fs::read_to_string(paths.config_data()).unwrap(), text);
    assert_eq!(w.read().serial_no, 18);

    // Replaced by another file (another inode).
    let (_root, paths) = root_with_sample("cfg-replaced");
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    let other = paths.data_dir().join("other");
    std::fs::write(&other, SAMPLE).unwrap();
    std::fs::rename(&other, paths.config_data()).unwrap();
    assert_eq!(w.update(|_| Ok(())).unwrap_err().to_string(), modified);
    assert_eq!(
        std::fs::read_to_string(paths.config_data()).unwrap(),
        SAMPLE
    );

    // Removed: not recreated empty.
    std::fs::remove_file(paths.config_data()).unwrap();
    assert_eq!(w.update(|_| Ok(())).unwrap_err().to_string(), modified);
    assert!(!paths.config_data().exists());

    // Locked by another writer.
    let (_root, paths) = root_with_sample("cfg-locked");
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    let lock = ganeti::fsutil::FileLock::exclusive(&paths.config_data(), Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(w.update(|_| Ok(())).unwrap_err().to_string(), modified);
    drop(lock);
    w.update(|_| Ok(())).unwrap();
}

#[test]
fn writer_checks_the_master_and_refuses_links() {
    let (root, paths) = root_with_sample("cfg-foreign");
    let err = ConfigWriter::open(paths.clone(), "node2.g25lab.test", false, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The configuration denotes node node1.g25lab.test as master, while my hostname is \
         node2.g25lab.test; opening a foreign configuration is only possible in \
         accept_foreign mode"
    );
    let w = ConfigWriter::open(paths.clone(), "node2.g25lab.test", true, None).unwrap();
    assert_eq!(w.read().cluster.master_node, LOCAL);
    drop(w);

    // A symbolic link in place of config.data is neither read nor written.
    let real = root.path("elsewhere");
    std::fs::rename(paths.config_data(), &real).unwrap();
    std::os::unix::fs::symlink(&real, paths.config_data()).unwrap();
    let err = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");

    // Missing file.
    std::fs::remove_file(paths.config_data()).unwrap();
    let err = ConfigWriter::open(paths, LOCAL, false, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Cannot read /var/lib/ganeti/config.data:"),
        "{err}"
    );
}

#[test]
fn opening_upgrades_uuids_and_groups_and_rewrites() {
    let text = edited(|v| {
        v["nodegroups"] = json!({});
        remove(v, &["nodes", LOCAL], "group");
        remove(v, &["instances", "inst1.g25lab.test"], "uuid");
        remove(v, &["cluster"], "uuid");
    });
    let (_root, paths) = root_with_sample("cfg-upgrade");
    std::fs::write(paths.config_data(), &text).unwrap();
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    assert_eq!(w.write_count(), 1);
    let disk = on_disk(&paths);
    assert_eq!(disk, *w.read());
    assert_eq!(disk.serial_no, 18);
    // Adding the group bumps the cluster serial, as 2.5.2's AddNodeGroup.
    assert_eq!(disk.cluster.serial_no, 9);
    let (uuid, group) = disk.nodegroups.iter().next().unwrap();
    assert_eq!(group.name, "default");
    assert_eq!(group.uuid.as_deref(), Some(uuid.as_str()));
    assert!(group.ctime.is_some());
    assert_eq!(disk.nodes[LOCAL].group.as_deref(), Some(uuid.as_str()));
    assert_eq!(
        disk.instances["inst1.g25lab.test"]
            .uuid
            .as_ref()
            .unwrap()
            .len(),
        36
    );
    assert!(disk.cluster.uuid.is_some());
    assert!(
        config::verify(&disk).is_empty(),
        "{:?}",
        config::verify(&disk)
    );
}

#[test]
fn initial_configuration_is_what_2_5_2_writes() {
    let root = Root::new("cfg-init");
    let paths = Paths::with_root(&root.dir);
    let mut p = InitParams::new(
        "cluster.g25lab.test",
        "10.98.0.100",
        LOCAL,
        "10.98.0.1",
        "AAAAB3NzaC1yc2E",
    );
    p.master_netdev = "g25v0".into();
    p.enabled_hypervisors = vec!["fake".into()];
    p.nicparams = json!({"link": "g25br0"}).as_object().unwrap().clone();
    p.modify_etc_hosts = false;
    p.modify_ssh_setup = false;
    let cfg = config::initial(&p).unwrap();
    assert_eq!((cfg.serial_no, cfg.cluster.serial_no), (1, 1));
    assert_eq!(cfg.cluster.highest_used_port, Some(10999));
    ConfigWriter::create(paths.clone(), cfg).unwrap();
    let meta = std::fs::metadata(paths.config_data()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let err = ConfigWriter::create(paths.clone(), config::initial(&p).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "('Cluster is already initialised', 'wrong_state')"
    );

    // Opening it (offline, as gnt-cluster init does) puts the master in
    // the default group and rewrites the file with mode 0640.
    let w = ConfigWriter::open(paths.clone(), LOCAL, false, None).unwrap();
    assert_eq!(w.write_count(), 1);
    w.update(|cfg| {
        cfg.touch_cluster(config::now());
        Ok(())
    })
    .unwrap();
    let meta = std::fs::metadata(paths.config_data()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    let ours = config::parse_json(&std::fs::read_to_string(paths.config_data()).unwrap()).unwrap();
    let sample = sample_value();
    // Same keys and types as the sample written by 2.5.2, the same
    // default parameters for every hypervisor.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            Value::Array(_) => json!("list"),
            Value::String(_) => json!("str"),
            Value::Number(n) if n.is_f64() => json!("float"),
            Value::Number(_) => json!("int"),
            Value::Bool(_) => json!("bool"),
            Value::Null => json!("null"),
        }
    }
    let mut sample_cluster = sample["cluster"].clone();
    sample_cluster.as_object_mut().unwrap().remove("tags");
    assert_eq!(shape(&ours["cluster"]), shape(&sample_cluster));
    assert_eq!(ours["cluster"]["hvparams"], sample["cluster"]["hvparams"]);
    assert_eq!(ours["cluster"]["nicparams"], sample["cluster"]["nicparams"]);
    assert_eq!(ours["cluster"]["beparams"], sample["cluster"]["beparams"]);
    let mut sample_node = sample["nodes"][LOCAL].clone();
    sample_node.as_object_mut().unwrap().remove("tags");
    assert_eq!(shape(&ours["nodes"][LOCAL]), shape(&sample_node));
    let ours_groups: Vec<&Value> = ours["nodegroups"].as_object().unwrap().values().collect();
    let sample_groups: Vec<&Value> = sample["nodegroups"].as_object().unwrap().values().collect();
    assert_eq!(shape(ours_groups[0]), shape(sample_groups[0]));
    assert_eq!(ours["instances"], json!({}));
    for key in ["serial_no", "version", "ctime", "mtime"] {
        assert_eq!(shape(&ours[key]), shape(&sample[key]), "{key}");
    }
    assert_eq!(ours["serial_no"], 3);
    assert_eq!(ours["cluster"]["serial_no"], 2);
}

// ---------------------------------------------------------------------------
// Distribution to real node daemons
// ---------------------------------------------------------------------------

/// A node daemon on 127.0.0.<n> in its own root, with the given cluster
/// certificate and name.
struct NodeDaemon {
    root: Root,
}

fn start_node(ip: &str, name: &str, port: u16, pem: &[u8]) -> NodeDaemon {
    let root = Root::new(&format!("cfg-{name}"));
    root.install_cert(pem);
    let out = root
        .command(NODED)
        .env("GANETI_HOSTNAME", name)
        .env_remove("GANETI_SBINDIR")
        .args(["-b", ip, "-p", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "noded on {ip} did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    NodeDaemon { root }
}

impl NodeDaemon {
    fn file(&self, wire: &str) -> std::path::PathBuf {
        self.root.path(wire)
    }
}

fn client(pem_path: &Path, port: u16) -> Arc<Client> {
    Arc::new(Client::new(pem_path).unwrap().port(port))
}

#[test]
fn ssconf_written_by_a_node_daemon_equals_the_sample() {
    let pem = self_signed_pem("ganeti.example.com");
    let port = free_port();
    let node = start_node("127.0.0.2", "node2.example.com", port, &pem);
    let pem_path = node.root.path("client.pem");
    std::fs::write(&pem_path, &pem).unwrap();
    let rpc = client(&pem_path, port);
    let values = config::ssconf_values(&config::parse(SAMPLE).unwrap());
    let r = rpc.call_node("127.0.0.2", "write_ssconf_files", &json!([values]));
    assert_eq!(r.fail_msg(), None);
    for (key, bytes) in sample_ssconf_files() {
        let path = node.file(&format!("/var/lib/ganeti/ssconf_{key}"));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "ssconf_{key}");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o444);
    }
}

#[test]
fn distribution_reaches_candidates_and_survives_a_down_one() {
    let pem = self_signed_pem("ganeti.example.com");
    let port = free_port();
    let names = [
        "node1.g25lab.test",
        "node2.g25lab.test",
        "node3.g25lab.test",
    ];
    // node1 is this (master) node: its daemon gets ssconf, never a copy
    // of config.data. node4 is a master candidate whose daemon is down.
    let nodes: Vec<NodeDaemon> = names
        .iter()
        .enumerate()
        .map(|(i, n)| start_node(&format!("127.0.0.{}", i + 1), n, port, &pem))
        .collect();
    let (master_root, paths) = root_with_sample("cfg-master");
    let pem_path = master_root.install_cert(&pem);
    let text = edited(|v| {
        let template = v["nodes"][LOCAL].clone();
        for (i, name) in names.iter().chain(&["node4.g25lab.test"]).enumerate() {
            let mut n = template.clone();
            n["name"] = json!(name);
            n["primary_ip"] = json!(format!("127.0.0.{}", i + 1));
            n["secondary_ip"] = json!(format!("127.0.0.{}", i + 1));
            v["nodes"][*name] = n;
        }
        // node3 is an online node that is not a candidate (nor could be).
        v["nodes"]["node3.g25lab.test"]["master_candidate"] = json!(false);
        v["nodes"]["node3.g25lab.test"]["master_capable"] = json!(false);
    });
    std::fs::write(paths.config_data(), &text).unwrap();

    let w = ConfigWriter::open(paths.clone(), LOCAL, false, Some(client(&pem_path, port))).unwrap();
    // The first write pushes ssconf even though the cluster serial is
    // unchanged.
    let mut warnings = Vec::new();
    w.update_with_feedback(&mut |m| warnings.push(m.to_string()), |cfg| {
        cfg.touch_instance("inst2.g25lab.test", config::now());
        Ok(())
    })
    .unwrap();
    assert_eq!(w.write_count(), 1);
    // The down candidate: one copy warning and one ssconf warning, and the
    // write went through.
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(
            "Copy of file /var/lib/ganeti/config.data to node node4.g25lab.test failed: "
        ),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].starts_with("Error while uploading ssconf files to node node4.g25lab.test: "),
        "{warnings:#?}"
    );
    let written = std::fs::read(paths.config_data()).unwrap();
    let local_meta = std::fs::metadata(paths.config_data()).unwrap();

    let config_on = |i: usize| nodes[i].file("/var/lib/ganeti/config.data");
    assert!(
        !config_on(0).exists(),
        "the master must not upload to itself"
    );
    assert!(!config_on(2).exists(), "node3 is not a master candidate");
    assert_eq!(std::fs::read(config_on(1)).unwrap(), written);
    let copy_meta = std::fs::metadata(config_on(1)).unwrap();
    assert_eq!(copy_meta.mode() & 0o7777, 0o640);
    assert_eq!(copy_meta.mtime(), local_meta.mtime());

    let expected = config::ssconf_values(&w.read());
    for node in &nodes {
        for (key, value) in &expected {
            let f = node.file(&format!("/var/lib/ganeti/ssconf_{key}"));
            assert_eq!(
                std::fs::read(&f).unwrap(),
                ssconf_file_bytes(value),
                "{f:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(nodes[1].file("/var/lib/ganeti/ssconf_master_candidates")).unwrap(),
        "node1.g25lab.test\nnode2.g25lab.test\nnode4.g25lab.test\n"
    );

    // A change that leaves the cluster serial alone: config copied again,
    // ssconf not pushed.
    let ssconf_file = nodes[2].file("/var/lib/ganeti/ssconf_instance_list");
    std::fs::remove_file(&ssconf_file).unwrap();
    let mut warnings = Vec::new();
    w.update_with_feedback(&mut |m| warnings.push(m.to_string()), |cfg| {
        cfg.touch_instance("inst1.g25lab.test", config::now());
        Ok(())
    })
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(!ssconf_file.exists());
    assert_eq!(
        std::fs::read(config_on(1)).unwrap(),
        std::fs::read(paths.config_data()).unwrap()
    );
    // A node update bumps the cluster serial: ssconf goes out again.
    w.update(|cfg| {
        assert!(cfg.touch_node("node3.g25lab.test", config::now()));
        Ok(())
    })
    .unwrap();
    assert!(ssconf_file.exists());
    assert_eq!(w.write_count(), 3);

    // Redistribution: an explicit push and the whole redist-conf.
    std::fs::remove_file(&ssconf_file).unwrap();
    let warnings = w.push_ssconf();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(ssconf_file.exists());
    std::fs::write(
        master_root.path("/var/lib/ganeti/known_hosts"),
        "cluster ssh-rsa AAAA\n",
    )
    .unwrap();
    std::fs::remove_file(config_on(1)).unwrap();
    let warnings = w.redistribute().unwrap();
    assert!(config_on(1).exists());
    for i in [1, 2] {
        assert_eq!(
            std::fs::read_to_string(nodes[i].file("/var/lib/ganeti/known_hosts")).unwrap(),
            "cluster ssh-rsa AAAA\n"
        );
    }
    assert!(!nodes[0].file("/var/lib/ganeti/known_hosts").exists());
    // Config copy, ssconf, known_hosts: each fails for node4 only.
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings.iter().all(|w| w.contains("node4.g25lab.test")));

    // The helpers LUs use.
    let mcs = w.master_candidates();
    assert_eq!(
        mcs.iter()
            .map(|n| (n.name.as_str(), n.address.as_str()))
            .collect::<Vec<_>>(),
        [
            ("node1.g25lab.test", "127.0.0.1"),
            ("node2.g25lab.test", "127.0.0.2"),
            ("node4.g25lab.test", "127.0.0.4")
        ]
    );
    assert_eq!(w.other_master_candidates().len(), 2);
    assert_eq!(w.online_nodes().len(), 4);
}
