//! `gnt-debug delay` and `gnt-job` against a real one-node cluster in a
//! temporary root: the job log printed as 2.5.2 prints it, `--submit`,
//! list/info/watch/cancel/archive/autoarchive output layouts and exit
//! codes.

#[path = "cli_util/mod.rs"]
mod cli_util;
mod common;

use cli_util::*;

fn ok(out: &std::process::Output) -> String {
    let (code, stdout, stderr) = result(out);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    stdout
}

/// `<ctime> <message>`: the ctime part has 24 characters.
fn log_message(line: &str) -> &str {
    assert!(
        line.len() > 25 && &line[24..25] == " ",
        "not a log line: {line:?}"
    );
    let stamp = &line[..24];
    assert!(
        ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "]
            .iter()
            .any(|d| stamp.starts_with(d)),
        "{stamp}"
    );
    &line[25..]
}

/// Submits `gnt-debug delay` with `--submit`; the job id.
fn submit(c: &TestCluster, args: &[&str]) -> u64 {
    let mut a = vec!["delay", "--submit"];
    a.extend_from_slice(args);
    let (code, out, err) = result(&c.run(GNT_DEBUG, &a));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    err.strip_prefix("JobID: ")
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {err:?}"))
}

#[test]
fn delay_prints_the_job_log_and_job_commands() {
    let c = TestCluster::new("cli-jobs");
    c.init_ok();

    // Job 2: a delay with two iterations prints its log as it comes.
    let out = ok(&c.run(GNT_DEBUG, &["delay", "--repeat", "2", "0.05"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(log_message(lines[0]), " - INFO: Test delay iteration 0/1");
    assert_eq!(log_message(lines[1]), " - INFO: Test delay iteration 1/1");
    // Without repetitions there is nothing to print.
    assert_eq!(ok(&c.run(GNT_DEBUG, &["delay", "0.01"])), "");
    // A failing job: its error, exit 1.
    let (code, out, err) = result(&c.run(GNT_DEBUG, &["delay", "--", "-1"]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("Failure: "), "{err}");

    // list: default fields, selected fields, separators, missing jobs.
    let list = ok(&c.run(GNT_JOB, &["list"]));
    assert_eq!(
        list,
        "ID Status  Summary          \n1  success CLUSTER_POST_INIT\n2  success TEST_DELAY(0.05)\n\
         3  success TEST_DELAY(0.01)\n4  error   TEST_DELAY(-1.0)\n"
    );
    assert_eq!(
        ok(&c.run(
            GNT_JOB,
            &[
                "list",
                "--no-headers",
                "--separator=|",
                "-o",
                "id,status,priority",
                "2",
                "4"
            ]
        )),
        "2|success|0\n4|error|0\n"
    );
    assert_eq!(
        ok(&c.run(GNT_JOB, &["list", "-o", "+priority", "1"])),
        "ID Status  Summary           Prio\n1  success CLUSTER_POST_INIT    0\n"
    );
    let (code, out, err) = result(&c.run(GNT_JOB, &["list", "--no-headers", "1", "99"]));
    assert_eq!(code, 0);
    assert_eq!(err, "No such job: 99\n");
    assert_eq!(out, "1 success CLUSTER_POST_INIT\n- -       -\n");

    // info: 2.5.2's layout.
    let info = ok(&c.run(GNT_JOB, &["info", "2"]));
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(&lines[..2], &["Job ID: 2", "  Status: success"]);
    assert!(lines[2].starts_with("  Received:         "));
    assert!(lines[3].starts_with("  Processing start: ") && lines[3].ends_with("s)"));
    assert!(lines[4].starts_with("  Processing end:   ") && lines[4].ends_with("s)"));
    assert!(lines[5].starts_with("  Total processing time: ") && lines[5].ends_with(" seconds"));
    assert_eq!(
        &lines[6..9],
        &["  Opcodes:", "    OP_TEST_DELAY", "      Status: success"]
    );
    assert!(lines[9].starts_with("      Processing start: "));
    assert!(lines[10].starts_with("      Execution start:  "));
    assert!(lines[11].starts_with("      Processing end:   "));
    let fields = &lines[12..];
    for want in [
        "      Input fields:",
        "        debug_level: 0",
        "        dry_run: False",
        "        duration: 0.05",
        "        on_master: True",
        "        on_nodes: ",
        "        priority: 0",
        "        repeat: 2",
        "      No output data",
        "      Execution log:",
    ] {
        assert!(fields.contains(&want), "{want:?} missing:\n{info}");
    }
    let log: Vec<&&str> = fields
        .iter()
        .filter(|l| l.starts_with("        1:") || l.starts_with("        2:"))
        .collect();
    assert_eq!(log.len(), 2, "{info}");
    assert!(
        log[0].ends_with(":message  - INFO: Test delay iteration 0/1"),
        "{}",
        log[0]
    );
    let info = ok(&c.run(GNT_JOB, &["info", "99"]));
    assert_eq!(info, "Job ID 99 not found\n");
    let info4 = ok(&c.run(GNT_JOB, &["show", "4"]));
    assert!(info4.contains("  Status: error\n"), "{info4}");
    assert!(info4.contains("      Result:\n"), "{info4}");

    // watch: a job submitted without waiting, followed to its end.
    let id = submit(&c, &["--repeat", "2", "0.3"]);
    let out = ok(&c.run(GNT_JOB, &["watch", &id.to_string()]));
    let head = format!("Output from job {id} follows");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], head);
    assert_eq!(lines[1], "-".repeat(head.len()));
    assert_eq!(
        log_message(lines.last().unwrap()),
        " - INFO: Test delay iteration 1/1"
    );
    // watch of a failed job: "Job N failed: <error>", exit 1.
    let (code, out, err) = result(&c.run(GNT_JOB, &["watch", "4"]));
    assert_eq!(code, 1, "{out}");
    assert!(err.starts_with("Job 4 failed: Failure: "), "{err}");

    // cancel: a job waiting for the node lock another one holds.
    let long = submit(&c, &["--no-master", "-n", NODE, "3"]);
    let waiting = submit(&c, &["--no-master", "-n", NODE, "0.1"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, out, _) = result(&c.run(GNT_JOB, &["cancel", &waiting.to_string()]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out == format!("Job {waiting} will be canceled\n")
            || out == format!("Job {waiting} canceled\n"),
        "{out}"
    );
    let (code, _, err) = result(&c.run(GNT_JOB, &["watch", &waiting.to_string()]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("Job {waiting} failed: Failure: command execution error:\nJob was canceled\n")
    );
    ok(&c.run(GNT_JOB, &["watch", &long.to_string()]));
    let (code, out, _) = result(&c.run(GNT_JOB, &["cancel", &long.to_string(), "2"]));
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!("Job {long} is no longer waiting in the queue\nJob 2 is no longer waiting in the queue\n")
    );

    // archive and autoarchive.
    assert_eq!(ok(&c.run(GNT_JOB, &["archive", "1"])), "");
    assert!(c.path("var/lib/ganeti/queue/archive/0/job-1").is_file());
    let (code, _, err) = result(&c.run(GNT_JOB, &["archive", "1"]));
    assert_eq!(
        (code, err.as_str()),
        (1, "Failed to archive job with ID '1'\n")
    );
    let out = ok(&c.run(GNT_JOB, &["autoarchive", "all"]));
    let jobs_left = waiting.max(long) - 1;
    assert_eq!(
        out,
        format!("Archived {jobs_left} jobs, 0 unchecked left\n")
    );
    assert_eq!(ok(&c.run(GNT_JOB, &["list"])), "ID Status Summary\n");
    let (code, _, err) = result(&c.run(GNT_JOB, &["autoarchive", "1x"]));
    assert_eq!(code, 1);
    assert!(err.ends_with("Invalid time specification '1x'\n"), "{err}");
    assert_eq!(
        ok(&c.run(GNT_JOB, &["autoarchive", "1d"])),
        "Archived 0 jobs, 0 unchecked left\n"
    );
}
