//! What the small recipe examples share: a warden on the server named on the command line,
//! or on a server of their own.

use std::time::Duration;

use zkwarden::Warden;
use zkwarden::testing::ZkServer;

/// A connected warden on the server given as the first argument or, without one, on a
/// ZooKeeper started here (with TTL nodes allowed, and expired ones looked for every 100 ms).
/// Keep the returned server alive as long as the warden is used.
pub async fn warden() -> Result<(Warden, Option<ZkServer>), Box<dyn std::error::Error>> {
    let (connect, server) = match std::env::args().nth(1) {
        Some(connect) => (connect, None),
        None => {
            let server = tokio::task::spawn_blocking(|| {
                ZkServer::builder()
                    .jvm_arg("-Dzookeeper.extendedTypesEnabled=true")
                    .jvm_arg("-Dznode.container.checkIntervalMs=100")
                    .start()
            })
            .await??;
            println!("started ZooKeeper at {}", server.connect_string());
            (server.connect_string(), Some(server))
        }
    };
    let warden = Warden::builder(&connect)
        .session_timeout(Duration::from_secs(10))
        .start()
        .await?;
    Ok((warden, server))
}
