//! The TURN servers under test, started fresh for each measurement on
//! loopback and pinned to one CPU: coturn's `turnserver` and our
//! `realtimer serve`, with the same user, loopback peers allowed and no
//! quota or bandwidth limit. CPU time and memory come from /proc.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use realtimer_test_support::process::Running;

use crate::client::User;

pub(crate) const USER: User<'static> = User {
    name: "bench",
    password: "benchpass",
};
const REALM: &str = "bench.local";

/// Which server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Coturn,
    Realtimer,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Coturn => "coturn",
            Kind::Realtimer => "realtimer",
        }
    }
}

/// Where a process runs: on one CPU (`taskset`), at a scheduling
/// priority (`nice`; below 0 so other programs on the machine do not
/// preempt the measurement, when allowed: root).
#[derive(Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) cpu: Option<usize>,
    pub(crate) nice: i32,
}

impl Placement {
    /// Moves this (single-threaded) process there; the session's
    /// scheduling priority comes back when the guard is dropped.
    pub(crate) fn apply_to_self(self) -> AutogroupNice {
        let pid = std::process::id().to_string();
        let run = |program: &str, args: &[&str]| {
            let ok = Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("relay_load: {program} {args:?} failed");
            }
        };
        if let Some(cpu) = self.cpu {
            run("taskset", &["-a", "-p", "-c", &cpu.to_string(), &pid]);
        }
        if self.nice == 0 {
            return AutogroupNice(None);
        }
        run("renice", &["-n", &self.nice.to_string(), "-p", &pid]);
        // With autogroups (sched_autogroup_enabled), nice only ranks
        // processes of one session; sessions share the CPU by their
        // group's nice. The servers start in this session.
        let before = AutogroupNice::read();
        if let Err(e) = std::fs::write(AUTOGROUP, self.nice.to_string()) {
            eprintln!("relay_load: setting the autogroup's nice: {e}");
            return AutogroupNice(None);
        }
        AutogroupNice(before)
    }
}

const AUTOGROUP: &str = "/proc/self/autogroup";

/// The session's autogroup nice before the benchmark changed it, put back
/// on drop (the session, a developer's shell say, outlives the benchmark).
pub(crate) struct AutogroupNice(Option<i32>);

impl AutogroupNice {
    /// "/autogroup-42 nice 0" -> 0.
    fn read() -> Option<i32> {
        let text = std::fs::read_to_string(AUTOGROUP).ok()?;
        text.split_whitespace().last()?.parse().ok()
    }
}

impl Drop for AutogroupNice {
    fn drop(&mut self) {
        if let Some(nice) = self.0 {
            let _ = std::fs::write(AUTOGROUP, nice.to_string());
        }
    }
}

/// A running server, stopped (by its PID) on drop.
pub(crate) struct Server {
    process: Running,
    pub(crate) address: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped before its folder goes.
        self.process.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Starts `kind` on a free loopback port where `placement` says, and
    /// waits until it answers STUN. `realtimer` is the path of our binary.
    pub(crate) fn start(
        kind: Kind,
        placement: Placement,
        realtimer: &std::path::Path,
    ) -> io::Result<Server> {
        let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("relay-load-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port_text = port.to_string();
        let user = format!("{}:{}", USER.name, USER.password);
        // On its CPU, or any; the scheduling priority is this process's
        // (see `Placement::apply_to_self`).
        let cpus = placement.cpu.map_or_else(
            || {
                format!(
                    "0-{}",
                    std::thread::available_parallelism().map_or(0, |n| n.get() - 1)
                )
            },
            |cpu| cpu.to_string(),
        );
        let mut command = Command::new("taskset");
        command.args(["-c", &cpus]);
        match kind {
            Kind::Coturn => {
                let (db, pid) = (dir.join("turndb"), dir.join("turnserver.pid"));
                command.arg("turnserver").args([
                    "-n",
                    "--listening-ip",
                    "127.0.0.1",
                    "--listening-port",
                    &port_text,
                    "--relay-ip",
                    "127.0.0.1",
                    "--min-port",
                    "20000",
                    "--max-port",
                    "29999",
                    "--lt-cred-mech",
                    "--user",
                    &user,
                    "--realm",
                    REALM,
                    "--allow-loopback-peers",
                    "--no-tls",
                    "--no-dtls",
                    "--no-tcp",
                    "--no-cli",
                    "--no-rfc5780",
                    "--log-file",
                    "stdout",
                    "--simple-log",
                ]);
                command.arg("--userdb").arg(db).arg("--pidfile").arg(pid);
            }
            Kind::Realtimer => {
                command.arg(realtimer).args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--stun-listen",
                    &format!("127.0.0.1:{port}"),
                    "--turn-tcp",
                    "false",
                    "--turn-user",
                    &user,
                    "--turn-realm",
                    REALM,
                    "--relay-allow",
                    "127.0.0.0/8",
                    "--relay-ports",
                    "40000-49999",
                    "--turn-bandwidth",
                    "0",
                    "--turn-ip-quota",
                    "100000",
                    "--turn-user-quota",
                    "100000",
                    "--turn-total-quota",
                    "100000",
                ]);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Server {
            process: Running::new(child),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        server.wait_until_answering()?;
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits (bounded) for a STUN Binding answer on the server's port.
    fn wait_until_answering(&self) -> io::Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        // A Binding request: no attributes, magic cookie, fixed id.
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        request.extend_from_slice(&[7; 12]);
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            socket.send_to(&request, self.address)?;
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                if n >= 20 && buf[..2] == [0x01, 0x01] {
                    return Ok(());
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the server on {} does not answer STUN", self.address),
        ))
    }
}

/// CPU time (user + system, every thread, dead ones too) of process `pid`
/// in seconds, from /proc/PID/stat (clock ticks of 10 ms).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 here.
    let ticks: u64 = fields[12..14]
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// A `Vm*` figure of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The 1-minute load average, to say how busy the machine was.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}
