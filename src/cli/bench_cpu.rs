//! CPU time of the server side of a benchmark: the figure that holds still on a
//! shared machine. Throughput moves with whatever else the machine runs; the CPU
//! time a server spends per request moves much less, because time the server is
//! not scheduled is not counted.
//!
//! Each server under test (zgate, and the baseline it is compared with) runs on its
//! own tokio runtime whose threads carry a name of its own; its CPU time is the sum
//! of `/proc/self/task/<tid>/schedstat` (nanoseconds on a CPU) over the threads of
//! that name. The clients run on another runtime and are not counted.

use std::time::Duration;

/// A runtime for one server, with named threads whose CPU time can be read.
pub(super) struct ServerRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    name: &'static str,
}

impl ServerRuntime {
    /// One worker thread named `name` (at most 15 characters: the kernel's limit),
    /// blocking threads too, kept alive so that their CPU time is never lost with
    /// them. One worker: with two on this 2-core machine, where the clients run
    /// too, work stealing and cross-thread wake-ups made the CPU per request move
    /// with the machine's load.
    pub(super) fn new(name: &'static str) -> Result<ServerRuntime, String> {
        ServerRuntime::with_workers(name, 1)
    }

    /// [`ServerRuntime::new`] with `workers` worker threads (a throughput run, where
    /// the server may use every core, as `zgate serve` does).
    pub(super) fn with_workers(
        name: &'static str,
        workers: usize,
    ) -> Result<ServerRuntime, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(name)
            .thread_keep_alive(Duration::from_secs(3600))
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the {name} runtime: {e}"))?;
        Ok(ServerRuntime {
            runtime: Some(runtime),
            name,
        })
    }

    /// Runs `work` on this runtime (everything it spawns stays there) and waits for
    /// it from the caller's.
    pub(super) async fn run<F>(&self, work: F) -> Result<F::Output, String>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or("runtime stopped")?;
        runtime
            .spawn(work)
            .await
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Runs the future `make` returns on this runtime's context from a thread of
    /// its own (so that the future need not be `Send`: `Service::start` holds its
    /// environment reader across awaits); what it spawns runs on this runtime.
    pub(super) async fn run_local<F, Fut>(&self, make: F) -> Result<Fut::Output, String>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future,
        Fut::Output: Send + 'static,
    {
        let handle = self
            .runtime
            .as_ref()
            .ok_or("runtime stopped")?
            .handle()
            .clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                let _ = tx.send(handle.block_on(make()));
            })
            .map_err(|e| format!("{}: {e}", self.name))?;
        rx.await.map_err(|e| format!("{}: {e}", self.name))
    }

    /// Nanoseconds its threads have run so far.
    pub(super) fn cpu_ns(&self) -> u64 {
        threads_cpu_ns(self.name)
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another's context panics; let it go in the
        // background instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The two servers' runtimes of a load benchmark and zgate started on its own:
/// `(zgate's runtime, the baseline's, the service)`, the admin's password `password`.
pub(super) async fn start_zgate(
    config: zgate::gateway::service::ServeConfig,
    password: &'static str,
) -> Result<
    (
        ServerRuntime,
        ServerRuntime,
        zgate::gateway::service::Service,
    ),
    String,
> {
    start_zgate_on(config, password, 1).await
}

/// [`start_zgate`] on a runtime of `workers` worker threads.
pub(super) async fn start_zgate_on(
    config: zgate::gateway::service::ServeConfig,
    password: &'static str,
    workers: usize,
) -> Result<
    (
        ServerRuntime,
        ServerRuntime,
        zgate::gateway::service::Service,
    ),
    String,
> {
    let zgate_rt = ServerRuntime::with_workers("zgate-server", workers)?;
    let base_rt = ServerRuntime::new("baseline-srv")?;
    let service = zgate_rt
        .run_local(move || async move {
            let env = |v: &str| (v == "ZGATE_ADMIN_PASSWORD").then(|| password.to_owned());
            zgate::gateway::service::Service::start(&config, &env, zgate::clock::Clock::system())
                .await
                .map_err(|e| e.to_string())
        })
        .await??;
    Ok((zgate_rt, base_rt, service))
}

/// Nanoseconds on a CPU of this process's threads named `name`.
pub(super) fn threads_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The measured windows of one load. Each server first gets its clients flat out
/// in a window of its own (the throughput and latency figures: zgate's window, then
/// the baseline's); then both servers' clients send at `rate` requests a second each,
/// at the same time (the CPU figure). At a fixed rate both servers batch alike, so
/// their CPU per request compares; at the same time, whatever the machine does to
/// one it does to the other, and the ratio holds still.
#[derive(Debug, Clone, Copy)]
pub(super) struct Phases {
    /// When this server's flat-out window opens.
    pub(super) start: std::time::Instant,
    /// When it closes.
    pub(super) saturated_until: std::time::Instant,
    /// When the shared paced window opens.
    pub(super) paced_from: std::time::Instant,
    /// When it closes.
    pub(super) paced_until: std::time::Instant,
    /// Between two requests of one client in the paced window.
    pub(super) interval: Duration,
}

impl Phases {
    /// The phases of zgate's load and of the baseline's: `warm_up` for every client
    /// to connect, then windows of `seconds` each; `rate` requests a second for
    /// each server from its `clients` clients.
    pub(super) fn pair(
        warm_up: Duration,
        seconds: u64,
        rate: u64,
        clients: usize,
    ) -> (Phases, Phases) {
        let window = Duration::from_secs(seconds);
        let zgate_start = std::time::Instant::now() + warm_up;
        let base_start = zgate_start + window;
        let paced_from = base_start + window;
        let phases = |start: std::time::Instant| Phases {
            start,
            saturated_until: start + window,
            paced_from,
            paced_until: paced_from + window,
            interval: Duration::from_secs_f64(clients.max(1) as f64 / rate.max(1) as f64),
        };
        (phases(zgate_start), phases(base_start))
    }

    /// When client `index` of `clients` sends its first paced request: the clients
    /// are spread over one interval, so that requests arrive evenly, not in bursts
    /// of every client at once (a burst's batching moved the CPU per request by a
    /// third from round to round).
    pub(super) fn first_paced(&self, index: usize, clients: usize) -> std::time::Instant {
        self.paced_from + self.interval.mul_f64(index as f64 / clients.max(1) as f64)
    }

    /// The server's CPU time over the paced window: waits for it to open and close.
    pub(super) async fn paced_cpu_ns(&self, server: &ServerRuntime) -> u64 {
        tokio::time::sleep_until(self.paced_from.into()).await;
        let before = server.cpu_ns();
        tokio::time::sleep_until(self.paced_until.into()).await;
        server.cpu_ns().saturating_sub(before)
    }
}

/// What one client did: its flat-out latencies, and how many paced requests.
#[derive(Debug, Default)]
pub(super) struct ClientRun {
    pub(super) latencies: Vec<Duration>,
    pub(super) paced: u64,
}
