//! Starting and stopping the relay: open the store, bind the port, serve until told to stop,
//! then let in-flight requests finish and close the store.

use crate::config::Config;
use crate::http::{self, guard::HostPolicy};
use crate::relay::Relay;
use crate::store::{BackendKind, Store, StoreError};
use crate::values::Token;
use slog::{info, o, warn, Logger};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a stop waits for in-flight requests before closing anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("{0}")]
    Exposed(String),
    #[error(transparent)]
    Tls(#[from] http::tls::TlsError),
}

/// Refuses to listen beyond loopback without a token or principals (unless told to, with a
/// warning).
fn check_exposure(config: &Config, store: &Store, logger: &Logger) -> Result<(), StartError> {
    let has_principals = store.has_principals();
    if let Some(warning) = config.check_exposure(has_principals).map_err(StartError::Exposed)? {
        eprintln!("{warning}");
        warn!(logger, "insecure_no_auth"; "warning" => &warning);
    }
    Ok(())
}

/// Opens the store in `config`'s data directory, with its archive and options.
pub async fn open_store(config: &Config, logger: Logger) -> Result<Store, StoreError> {
    let (dir, archive, options) = (config.data_dir.clone(), config.archive(), config.store_options());
    let backend = config.log.clone();
    tokio::task::spawn_blocking(move || Store::open_on(&dir, Some(&archive), options, &backend, logger))
        .await
        .map_err(|e| StoreError::Crashed(format!("opening the store failed: {e}")))?
}

/// A relay with its store open and its port bound, not yet serving.
pub struct Server {
    relay: Relay,
    listener: TcpListener,
    policy: HostPolicy,
    token: Option<Token>,
    /// Set when the relay serves HTTPS.
    tls: Option<TlsAcceptor>,
    logger: Logger,
}

impl Server {
    /// Opens the store `config` names and binds its port.
    pub async fn bind(config: &Config, logger: Logger) -> Result<Server, StartError> {
        // Without a data dir there are no principals (in sled mode): refused before one is made.
        if config.log.kind == BackendKind::Sled && !config.data_dir.exists() {
            config.check_exposure(false).map_err(StartError::Exposed)?;
        }
        let store = open_store(config, logger.new(o!("component" => "store"))).await?;
        Server::bind_with(config, store, logger).await
    }

    /// Binds the port for a store the caller opened (with [`open_store`]): for tests that
    /// reach the store itself.
    pub async fn bind_with(config: &Config, store: Store, logger: Logger) -> Result<Server, StartError> {
        check_exposure(config, &store, &logger)?;
        Server::listen(config, store, logger).await
    }

    async fn listen(config: &Config, store: Store, logger: Logger) -> Result<Server, StartError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(http::tls::acceptor(cert, key)?),
            _ => None,
        };
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind((host, config.port)).await.map_err(|e| StartError::Listen {
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "the port is in use (is another relay running?); stop it or pass --port".to_owned()
                }
                _ => e.to_string(),
            },
            addr,
        })?;
        if !config.fsync {
            warn!(logger, "fsync is off: acknowledged posts survive a process crash, not a power cut");
        }
        let relay = Relay::new(store, config.relay_settings(), logger.new(o!("component" => "relay")));
        let policy = HostPolicy::new(config.allowed_hosts.clone());
        Ok(Server { relay, listener, policy, token: config.auth_token.clone(), tls, logger })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Where clients reach it: `http://ADDR`, or `https://ADDR` when it serves HTTPS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Serves until `shutdown` completes, then stops accepting, gives in-flight requests up to
    /// [`SHUTDOWN_GRACE`], and closes the store (which commits every post already queued).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StoreError> {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        };
        let mcp_stop = CancellationToken::new();
        let http_logger = self.logger.new(o!("component" => "http"));
        let secure = self.tls.is_some();
        let routes = http::routes(
            self.relay.clone(),
            self.policy,
            self.token,
            secure,
            mcp_stop.clone(),
            http_logger.clone(),
        );
        let metrics = self.relay.metrics().clone();
        let serving = http::serve::serve(self.listener, self.tls, routes, signal, metrics, http_logger);
        let serving = tokio::spawn(serving);
        tokio::spawn(self.relay.clone().keep_retention());
        let _ = stopping_rx.await;
        info!(self.logger, "stopping"; "grace_s" => SHUTDOWN_GRACE.as_secs());
        self.relay.stop();
        if tokio::time::timeout(SHUTDOWN_GRACE, serving).await.is_err() {
            warn!(self.logger, "requests still open after the grace period; closing anyway");
        }
        mcp_stop.cancel();
        self.relay.close().await
    }
}
