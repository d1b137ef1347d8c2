//! The `onemedi` command line: serve (with the demo city by default), migrate, seed demo data, manage users.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use onemedi::{
    Application,
    config::Settings,
    db::{self, Db, demo, users},
    domain::{Email, Password, PersonName, Phone, Role},
    simulate, telemetry,
};

#[derive(Parser)]
#[command(name = "onemedi", version, about = "ONE MEDI healthcare platform server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (no demo data is loaded).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DataArgs),
    /// Load the demo city and accounts (skipped when already present).
    SeedDemo(DataArgs),
    /// Run the demo city simulator against a running server (its demo accounts) until stopped.
    Simulate(SimulateArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (default from config: 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<SocketAddr>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration_secs: Option<u64>,
}

#[derive(clap::Args)]
struct DataArgs {
    /// Folder for the SQLite file, secrets and outbox (default from config: ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account with any role (for operators).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("info");
    let cli = Cli::parse();
    let mut settings = Settings::load()?;
    match cli.command {
        None => {
            serve(settings, true).await?;
        }
        Some(Command::Serve(args)) => {
            if let Some(bind) = args.bind {
                settings.server.bind = bind;
            }
            apply_data_dir(&mut settings, args.data);
            serve(settings, false).await?;
        }
        Some(Command::Simulate(args)) => {
            let simulation = simulate::run(args.server, settings.simulate);
            let stop = async {
                match args.duration_secs {
                    Some(secs) => tokio::time::sleep(std::time::Duration::from_secs(secs)).await,
                    None => drop(tokio::signal::ctrl_c().await),
                }
            };
            tokio::select! {
                () = simulation => {}
                () = stop => println!("simulation stopped"),
            }
        }
        Some(Command::Migrate(args)) => {
            apply_data_dir(&mut settings, args);
            let url = settings.database.effective_url(&settings.server.data_dir);
            let applied = db::migrate::run_pending(&url).await?;
            println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
        }
        Some(Command::SeedDemo(args)) => {
            apply_data_dir(&mut settings, args);
            let database = open(&settings).await?;
            let mut conn = database.write().await?;
            if demo::seed(&mut conn).await? {
                println!("demo city loaded\n{}", demo::logins());
            } else {
                println!("demo data already present");
            }
        }
        Some(Command::User {
            command:
                UserCommand::Create {
                    email,
                    password,
                    role,
                    name,
                    phone,
                    data,
                },
        }) => {
            apply_data_dir(&mut settings, data);
            create_user(
                &settings,
                &email,
                &password,
                &role,
                name.as_deref(),
                phone.as_deref(),
            )
            .await?;
        }
    }
    Ok(())
}

fn apply_data_dir(settings: &mut Settings, args: DataArgs) {
    if let Some(dir) = args.data_dir {
        settings.server.data_dir = dir;
    }
}

async fn open(settings: &Settings) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&settings.server.data_dir)?;
    let url = settings.database.effective_url(&settings.server.data_dir);
    Ok(Db::connect(&url, settings.database.max_connections).await?)
}

async fn serve(settings: Settings, demo_mode: bool) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    if demo_mode {
        let state = app.state();
        let mut conn = state.db.write().await?;
        if users::count(&mut conn).await? == 0 && demo::seed(&mut conn).await? {
            println!("{}", demo::logins());
        }
    }
    println!(
        "ONE MEDI listening on http://127.0.0.1:{port} (API docs: http://127.0.0.1:{port}/docs/)",
        port = app.port()
    );
    let simulation = (demo_mode && app.state().settings.simulate.in_demo_mode).then(|| {
        let bind = app.state().settings.server.bind;
        let host = if bind.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            bind.ip()
        };
        let base = format!("http://{}", SocketAddr::new(host, app.port()));
        println!("demo city simulator on: crews move and answer offers, calls and orders arrive ([simulate] in the config)");
        tokio::spawn(simulate::run(base, app.state().settings.simulate.clone()))
    });
    let served = app.run_until_stopped().await;
    if let Some(simulation) = simulation {
        simulation.abort();
    }
    served.context("server stopped with an error")
}

async fn create_user(
    settings: &Settings,
    email: &str,
    password: &str,
    role: &str,
    name: Option<&str>,
    phone: Option<&str>,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    let password = Password::parse(password).map_err(|e| anyhow::anyhow!("--password {e}"))?;
    let role = Role::parse(role).ok_or_else(|| {
        let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::anyhow!("--role must be one of {}", names.join(", "))
    })?;
    let name =
        PersonName::parse(name.unwrap_or(email.as_str())).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let phone = phone
        .map(Phone::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--phone {e}"))?;
    let database = open(settings).await?;
    let hash = onemedi::auth::password::hash(password.expose().to_owned()).await?;
    let now = db::now();
    let name = name.into_inner();
    let new = users::NewUser {
        email: Some(email.as_str()),
        phone: phone.as_ref().map(Phone::as_str),
        name: &name,
        password_hash: Some(&hash),
        role: role.as_str(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = database.write().await?;
    let user = users::insert(&mut conn, &new).await.map_err(|e| {
        if db::is_unique_violation(&e, "users", "email") {
            anyhow::anyhow!("an account with email {} already exists", email.as_str())
        } else {
            anyhow::anyhow!(e)
        }
    })?;
    println!("created user {} ({}) with role {}", user.id, email.as_str(), role);
    Ok(())
}
