//! Shared helpers of the integration tests: temporary node roots, the real
//! binaries, throw-away certificates, a raw HTTP client.
#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const NODED: &str = env!("CARGO_BIN_EXE_ganeti-noded");
pub const MASTERD: &str = env!("CARGO_BIN_EXE_ganeti-masterd");

/// A node root (`GANETI_ROOTDIR`) under the temporary directory; removed on
/// drop, after stopping a node daemon left running in it.
pub struct Root {
    pub dir: PathBuf,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Root {
    pub fn new(tag: &str) -> Root {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ganeti-rs-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("var/lib/ganeti")).unwrap();
        Root { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel.trim_start_matches('/'))
    }

    pub fn pid_file(&self, daemon: &str) -> PathBuf {
        self.path(&format!("var/run/ganeti/{daemon}.pid"))
    }

    pub fn node_log(&self) -> PathBuf {
        self.path("var/log/ganeti/node-daemon.log")
    }

    /// The pid in the node daemon's pid file, if any.
    pub fn noded_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file("ganeti-noded"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// A command for one of the binaries, in this root.
    pub fn command(&self, bin: &str) -> Command {
        let mut c = Command::new(bin);
        c.env("GANETI_ROOTDIR", &self.dir)
            .env("GANETI_HOSTNAME", "node1.example.com")
            .env_remove("RUST_LOG");
        c
    }

    /// Starts the node daemon (detaching) and returns the starter's output.
    pub fn start_noded(&self, args: &[&str]) -> Output {
        self.command(NODED).args(args).output().unwrap()
    }

    /// Writes `ssconf_master_node`, naming `node` as the master.
    pub fn set_master(&self, node: &str) {
        std::fs::write(
            self.path("var/lib/ganeti/ssconf_master_node"),
            format!("{node}\n"),
        )
        .unwrap();
    }

    /// Writes the ssconf keys naming the file storage directories, as a
    /// master does: the node refuses file disks without them.
    pub fn set_file_storage(&self) {
        for (key, value) in [
            ("file_storage_dir", "/srv/ganeti/file-storage"),
            ("shared_file_storage_dir", "/srv/ganeti/shared-file-storage"),
        ] {
            std::fs::write(
                self.path(&format!("var/lib/ganeti/ssconf_{key}")),
                format!("{value}\n"),
            )
            .unwrap();
        }
    }

    /// Writes a cluster certificate as `server.pem` and returns its path.
    pub fn install_cert(&self, pem: &[u8]) -> PathBuf {
        let p = self.path("var/lib/ganeti/server.pem");
        std::fs::write(&p, pem).unwrap();
        p
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(pid) = self.noded_pid() {
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: plain kill(2) on a pid this test started.
    unsafe {
        libc::kill(pid, sig);
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at the state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `f` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A field of /proc/<pid>/status in kB.
pub fn status_kb(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An HTTP answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one HTTP response (with Content-Length) from a stream.
pub fn read_answer(s: &mut impl Read) -> Answer {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            panic!(
                "connection closed in the head: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    Answer { status, head, body }
}

/// Sends raw bytes on a new plain connection and reads one answer.
pub fn raw_call(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    read_answer(&mut s)
}

/// `PUT /<procedure>` with a JSON body, as a 2.5.2 master sends it.
pub fn request(procedure: &str, body: &str) -> Vec<u8> {
    format!(
        "PUT /{procedure} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A self-signed certificate and key in one PEM (key first, as Ganeti's
/// `server.pem`).
pub fn self_signed_pem(cn: &str) -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_u32())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let mut pem = key.private_key_to_pem_pkcs8().unwrap();
    pem.extend_from_slice(&b.build().to_pem().unwrap());
    pem
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Connects over TLS, presenting `client_pem` (or nothing), trusting only
/// `server_pem`, without a host name check (as Ganeti's client).
pub fn tls_connect(
    addr: SocketAddr,
    server_pem: &Path,
    client_pem: Option<&Path>,
) -> Result<openssl::ssl::SslStream<TcpStream>, String> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(server_pem).unwrap();
    if let Some(c) = client_pem {
        b.set_certificate_file(c, SslFiletype::PEM).unwrap();
        b.set_private_key_file(c, SslFiletype::PEM).unwrap();
    }
    let connector = b.build();
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut cfg = connector.configure().unwrap();
    cfg.set_verify_hostname(false);
    cfg.set_use_server_name_indication(false);
    cfg.connect("unused", tcp).map_err(|e| e.to_string())
}

/// A node daemon serving TLS on 127.0.0.1 in its own root, with a fresh
/// cluster certificate. The client keeps its own copy of the certificate,
/// since node_leave_cluster deletes server.pem.
pub struct TlsNode {
    pub root: Root,
    pub port: u16,
    pub pid: i32,
    pub cert: PathBuf,
}

impl TlsNode {
    /// Starts the daemon in `root` (prepared by the caller) with `env`
    /// added to its environment.
    pub fn start(root: Root, env: &[(&str, &Path)]) -> TlsNode {
        let cert = root.install_cert(&self_signed_pem("ganeti.example.com"));
        let client_cert = root.dir.join("client.pem");
        std::fs::copy(&cert, &client_cert).unwrap();
        let port = free_port();
        let mut cmd = root.command(NODED);
        cmd.env_remove("GANETI_SBINDIR")
            .args(["-b", "127.0.0.1", "-p", &port.to_string()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = root.noded_pid().expect("pid file");
        TlsNode {
            root,
            port,
            pid,
            cert: client_cert,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends raw bytes over TLS with the cluster certificate; one answer.
    pub fn send(&self, raw: &[u8]) -> Answer {
        let mut s = tls_connect(self.addr(), &self.cert, Some(&self.cert)).unwrap();
        s.write_all(raw).unwrap();
        read_answer(&mut s)
    }

    /// One `PUT /<procedure>` with a JSON body; the raw answer.
    pub fn raw(&self, procedure: &str, body: &str) -> Answer {
        self.send(&request(procedure, body))
    }

    /// The status for a request that announces a `len`-byte body and sends
    /// none (the daemon refuses it from the head).
    pub fn announced(&self, procedure: &str, len: usize) -> u16 {
        let head =
            format!("PUT /{procedure} HTTP/1.1\r\nHost: node\r\nContent-Length: {len}\r\n\r\n");
        self.send(head.as_bytes()).status
    }
}
