//! Builds a running `Application` from a `Config`: stores, keys, actors, service and the HTTP server.
//!
//! Tests call the same `Application::build` with their own database, key prefix, clock and port 0, so
//! what they exercise is what production runs.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::dev::{Server, ServerHandle};
use actix_web::rt::task::JoinHandle;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context as _;
use identsphere_actors::{ActorSettings, Backend, CLOCK_SKEW_ALLOWANCE, Registry};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::keys::{KeyRing, RotationSchedule, Sealer};
use crate::auth::oauth::ProviderClient;
use crate::auth::password::PasswordHasher;
use crate::auth::tokens::Tokens;
use crate::clock::Clock;
use crate::config::{Config, KeyEncryptionKey, Passkeys, StoreConfig};
use crate::http::middleware::outermost;
use crate::mail::Mailer;
use crate::routes;
use crate::service::{CEREMONY_TTL, Collaborators, Service, Settings, SocialSettings};
use crate::store::KeyStore;

use super::state::AppState;
use crate::store::Stores;
use crate::store::embedded::{SqliteStore, embedded_kek};
use crate::store::postgres::{PgStore, migrate};
use crate::store::redis::RedisStore;
use crate::store::tls::postgres_variables;

/// How long an idle client connection is kept open (`keep_alive` below).
const KEEP_ALIVE_SECS: u64 = 75;

/// How long a request waits for its organization's actor.
const ACTOR_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The process-wide Prometheus recorder (the `metrics` facade is global by design).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        )?
        .build_recorder();
    let handle = HANDLE.get_or_init(|| {
        let handle = recorder.handle();
        // Loses only to a concurrent first start in the same process, whose recorder is then in use.
        let _ = metrics::set_global_recorder(recorder);
        handle
    });
    Ok(handle.clone())
}

/// What a failure to reach Redis names: the variables to look at.
fn redis_variables(url: &str, ca_file: bool) -> &'static str {
    if ca_file {
        "connecting to IDENTSPHERE_REDIS_URL (certificate checked against IDENTSPHERE_REDIS_CA_FILE)"
    } else if url.starts_with("rediss://") {
        "connecting to IDENTSPHERE_REDIS_URL (certificate checked against the system's CAs: \
         IDENTSPHERE_REDIS_CA_FILE names another)"
    } else {
        "connecting to IDENTSPHERE_REDIS_URL (plain TCP: a Redis that requires TLS needs a rediss:// URL)"
    }
}

/// Opens (and migrates) the configured backend; returns it with the key-encryption key to use.
pub(super) async fn open_stores(config: &Config, clock: &Clock) -> anyhow::Result<(Stores, KeyEncryptionKey)> {
    match &config.store {
        StoreConfig::Postgres { database, pool_size, redis_url, redis_ca, redis_key_prefix } => {
            let variables = postgres_variables(database);
            migrate(database).await.with_context(|| format!("applying migrations to {variables}"))?;
            let pg = PgStore::connect(database, *pool_size).context(variables)?;
            // The feed keeps entries for the longest lifetime any can have, not one entry's own: none covers
            // a token that outlives both settings.
            let feed_retention = config.access_token_ttl.max(config.refresh_token_ttl) + CLOCK_SKEW_ALLOWANCE;
            let redis = RedisStore::connect(redis_url, redis_ca.as_ref(), redis_key_prefix.clone(), feed_retention)
                .await
                .context(redis_variables(redis_url, redis_ca.is_some()))?
                .rebuilt_from(Arc::new(pg.clone()), config.access_token_ttl);
            // A Redis that lost its data (restarted without persistence) gets the revocations back before this
            // replica serves; if that fails now, the first check tries again and refuses until it succeeds.
            if let Err(err) = redis.restore_if_lost(clock.now()).await {
                tracing::warn!(error = %err, "could not check the denylist against Postgres at start-up");
            }
            let kek = config
                .key_encryption_key
                .clone()
                .ok_or_else(|| anyhow::anyhow!("IDENTSPHERE_KEY_ENCRYPTION_KEY is required with Postgres"))?;
            tracing::info!(store = "postgres+redis", "storage ready");
            let stores = Stores {
                accounts: Arc::new(pg.clone()),
                families: Arc::new(pg.clone()),
                organizations: Arc::new(pg.clone()),
                factors: Arc::new(pg.clone()),
                lifecycle: Arc::new(pg.clone()),
                passkeys: Arc::new(pg.clone()),
                identities: Arc::new(pg.clone()),
                sso: Arc::new(pg.clone()),
                ceremonies: Arc::new(redis.clone()),
                keys: Arc::new(pg.clone()),
                denylist: Arc::new(redis.clone()),
                limiter: Arc::new(redis.clone()),
                admin: Arc::new(pg.clone()),
                probes: vec![Arc::new(pg), Arc::new(redis)],
            };
            Ok((stores, kek))
        }
        StoreConfig::Embedded => {
            let dir = config.data_dir.clone();
            let (store, kek) = tokio::task::spawn_blocking({
                let configured = config.key_encryption_key.clone();
                move || -> anyhow::Result<_> {
                    let store = SqliteStore::open(&dir)?;
                    Ok((store, embedded_kek(&dir, configured.as_ref())?))
                }
            })
            .await??;
            tracing::info!(
                store = "embedded",
                data_dir = %config.data_dir.display(),
                "storage ready: embedded SQLite store, for a single node (set IDENTSPHERE_DATABASE_URL and \
                 IDENTSPHERE_REDIS_URL to run replicas)"
            );
            let stores = Stores {
                accounts: Arc::new(store.clone()),
                families: Arc::new(store.clone()),
                organizations: Arc::new(store.clone()),
                factors: Arc::new(store.clone()),
                lifecycle: Arc::new(store.clone()),
                passkeys: Arc::new(store.clone()),
                identities: Arc::new(store.clone()),
                sso: Arc::new(store.clone()),
                ceremonies: Arc::new(store.clone()),
                keys: Arc::new(store.clone()),
                denylist: Arc::new(store.clone()),
                limiter: Arc::new(store.clone()),
                admin: Arc::new(store.clone()),
                probes: vec![Arc::new(store)],
            };
            Ok((stores, kek))
        }
    }
}

/// Every `every`: reloads the published keys, rotating when the schedule says so, and hands them to the
/// token minting. Failures are logged and retried at the next tick; the keys in use stay.
async fn maintain_keys(
    store: Arc<dyn KeyStore>,
    kek: KeyEncryptionKey,
    schedule: RotationSchedule,
    clock: Clock,
    tokens: Tokens,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match KeyRing::maintain(store.as_ref(), &kek, Some(&schedule), clock.now()).await {
            Ok((ring, _)) => {
                metrics::gauge!("identsphere_keys_published").set(ring.signing.len() as f64);
                if let Err(err) = tokens.replace_keys(ring) {
                    tracing::error!(error = %format!("{err:#}"), "the reloaded keys are unusable; keeping the current ones");
                }
            }
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "could not reload the signing keys; retrying"),
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<Server>,
    state: web::Data<AppState>,
    key_task: JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Migrates the database, opens the stores and keys, starts the actors and binds the listener.
    ///
    /// Must be called inside a running actix system.
    ///
    /// # Errors
    /// When a store is unreachable, a migration fails, the keys cannot be opened or the address
    /// cannot be bound.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // The recorder first: what start-up records must not be lost.
        let metrics = metrics_handle()?;
        metrics::gauge!("identsphere_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let (stores, kek) = open_stores(&config, &clock).await?;
        let sealer = Sealer::new(&kek)?;
        let schedule =
            RotationSchedule::new(config.key_rotation_interval, config.access_token_ttl, config.refresh_token_ttl);
        let (ring, _) = KeyRing::maintain(stores.keys.as_ref(), &kek, Some(&schedule), clock.now())
            .await
            .context("loading the signing keys")?;
        let tokens = Tokens::new(ring, config.public_url.base.clone(), config.access_token_ttl)?;
        let key_task = actix_web::rt::spawn(maintain_keys(
            Arc::clone(&stores.keys),
            kek,
            schedule,
            clock.clone(),
            tokens.clone(),
            config.key_check_interval,
        ));
        let hasher = PasswordHasher::new(
            config.argon2,
            config.hash_concurrency.get(),
            sealer.clone(),
            config.password_check_floor,
        )?;
        let registry = Registry::new(
            Backend { families: Arc::clone(&stores.families), denylist: Arc::clone(&stores.denylist) },
            ActorSettings {
                grace: config.refresh_reuse_grace,
                access_ttl: config.access_token_ttl,
                idle_after: config.actor_idle_timeout,
                answer_within: ACTOR_ANSWER_WITHIN,
            },
            config.actor_arbiters.get(),
        );
        let settings = Settings {
            refresh: config.refresh_token_ttl,
            grace: config.refresh_reuse_grace,
            reauthentication: config.reauthentication_window,
            limits: config.rate_limits,
            allow_weak_hashes: config.import_allow_weak_hashes,
        };
        let collaborators = Collaborators {
            sealer,
            mailer: Mailer::new(&config.email, &config.data_dir)?,
            product_name: config.email.product_name.clone(),
            webauthn: relying_party(&config.passkeys)?,
            social: Arc::new(SocialSettings {
                // On loopback HTTP (development, tests) a connection's issuer may be local too.
                client: ProviderClient::new(config.public_url.secure_cookies)?,
                providers: config.oauth_providers.iter().map(|p| (p.name.clone(), p.clone())).collect(),
                redirect_uris: config.allowed_redirect_uris.clone(),
                public_base: config.public_url.base.clone(),
                loopback: !config.public_url.secure_cookies,
            }),
        };
        let service = Service::new(stores, hasher, tokens, registry, clock, settings, collaborators);
        let state = web::Data::new(AppState {
            service,
            metrics,
            openapi: super::openapi::json()?,
            config: Arc::new(config.clone()),
            draining: AtomicBool::new(false),
        });

        let listener =
            TcpListener::bind(config.bind).with_context(|| format!("binding IDENTSPHERE_BIND {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let separate_metrics = config.metrics_bind.is_some();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(middleware::from_fn(outermost))
                .configure(routes::configure)
                .configure(|cfg| {
                    if !separate_metrics {
                        routes::metrics(cfg);
                    }
                })
        })
        .workers(config.workers.get())
        // Longer than the idle timeout of the clients and load balancers in front (60 s for most; HTTP
        // clients often 5 s, actix's default too): the side that closes an idle connection must be the client,
        // or a request sent on it as it closes is lost (the 30-minute fault run saw one such
        // `RemoteProtocolError`).
        .keep_alive(std::time::Duration::from_secs(KEEP_ALIVE_SECS))
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        .disable_signals()
        .listen(listener)?
        .run();
        let metrics_server = match config.metrics_bind {
            Some(bind) => {
                let metrics_state = state.clone();
                let listener =
                    TcpListener::bind(bind).with_context(|| format!("binding IDENTSPHERE_METRICS_BIND {bind}"))?;
                tracing::info!(%bind, "serving /metrics on its own port");
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(metrics_state.clone())
                        .wrap(middleware::from_fn(outermost))
                        .configure(routes::metrics_only)
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run();
                Some(server)
            }
            None => None,
        };
        tracing::info!(port, issuer = %config.public_url.base, "listening");
        Ok(Self { port, server, metrics_server, state, key_task })
    }

    /// The port bound (useful with port 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through `handle()`, then stops the actors and closes the stores.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self { server, metrics_server, state, key_task, .. } = self;
        let metrics_handle = metrics_server.as_ref().map(Server::handle);
        if let Some(metrics_server) = metrics_server {
            actix_web::rt::spawn(metrics_server);
        }
        let served = server.await;
        if let Some(handle) = metrics_handle {
            handle.stop(true).await;
        }
        key_task.abort();
        state.service.close();
        tracing::info!("stopped: actors stopped, stores closed");
        served
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: `/readyz` fails at once, requests are
    /// still served for `IDENTSPHERE_SHUTDOWN_DELAY` (so load balancers stop sending), then the listener
    /// closes and in-flight requests get `IDENTSPHERE_SHUTDOWN_TIMEOUT` to finish; then the actors stop and
    /// the stores close.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed or the server fails.
    pub async fn serve_until_signalled(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (handle, state) = (self.server.handle(), self.state.clone());
        let delay = state.config.shutdown_delay;
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            state.draining.store(true, Ordering::Relaxed);
            tracing::info!(delay_ms = delay.as_millis(), "shutdown signal: draining");
            tokio::time::sleep(delay).await;
            handle.stop(true).await;
        });
        Ok(self.run_until_stopped().await?)
    }
}

/// The WebAuthn verifier of the configured relying party; `None` (with the reason logged) while passkeys are
/// off. Origins must match exactly: no subdomain or port wildcards beyond what was configured.
fn relying_party(passkeys: &Passkeys) -> anyhow::Result<Option<Arc<webauthn_rs_core::WebauthnCore>>> {
    let rp = match passkeys {
        Passkeys::On(rp) => rp,
        Passkeys::Off(why) => {
            tracing::warn!("passkeys are off: {why}");
            return Ok(None);
        }
    };
    let origins = rp.origins.iter().map(|o| url::Url::parse(o)).collect::<Result<Vec<_>, _>>()?;
    let timeout = CEREMONY_TTL.unsigned_abs();
    Ok(Some(Arc::new(webauthn_rs_core::WebauthnCore::new_unsafe_experts_only(
        &rp.rp_name,
        &rp.rp_id,
        origins,
        timeout,
        Some(false),
        Some(false),
    ))))
}
