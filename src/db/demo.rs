//! The demo city: a few accounts per role and the catalog, fleet and facilities around Bengaluru.

use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{Conn, users};
use crate::{auth::password, domain::Role, on_conn};

/// Hospitals, fleet, blood banks, catalog, doctors' schedules and marketing content (portable SQL that
/// refers to the demo accounts by email).
const DEMO_CITY_SQL: &str = include_str!("demo_city.sql");

/// The home-care partners' profiles and services (refers to the demo accounts and services by natural
/// keys, loaded after the city).
const DEMO_CARE_SQL: &str = include_str!("demo_care.sql");

/// The password of every demo account (printed at start in demo mode).
pub const DEMO_PASSWORD: &str = "onemedi-demo";

/// The demo accounts: (email local part, display name, role).
pub const DEMO_USERS: &[(&str, &str, Role)] = &[
    ("admin", "Aarav Admin", Role::Admin),
    ("staff", "Sneha Staff", Role::Staff),
    ("partner", "Prakash Partner", Role::Partner),
    ("carepartner1", "Kavitha Nair (nursing)", Role::Partner),
    ("carepartner2", "Ramesh Kulkarni (physiotherapy)", Role::Partner),
    ("carepartner3", "Sunita Care Services", Role::Partner),
    ("dispatcher", "Divya Dispatcher", Role::Dispatcher),
    ("doctor1", "Dr. Meera Rao", Role::Doctor),
    ("doctor2", "Dr. Arjun Iyer", Role::Doctor),
    ("doctor3", "Dr. Kavya Nair", Role::Doctor),
    ("doctor4", "Dr. Rohan Shetty", Role::Doctor),
    ("paramedic1", "Imran Khan", Role::Paramedic),
    ("paramedic2", "Lakshmi Devi", Role::Paramedic),
    ("paramedic3", "Suresh Gowda", Role::Paramedic),
    ("paramedic4", "Anitha Reddy", Role::Paramedic),
    ("paramedic5", "Naveen Kumar", Role::Paramedic),
    ("paramedic6", "Farah Ali", Role::Paramedic),
    ("paramedic7", "Joseph D'Souza", Role::Paramedic),
    ("paramedic8", "Meena Kumari", Role::Paramedic),
    ("paramedic9", "Abdul Rahman", Role::Paramedic),
    ("paramedic10", "Shruti Hegde", Role::Paramedic),
    ("paramedic11", "Prakash Naik", Role::Paramedic),
    ("paramedic12", "Revathi S", Role::Paramedic),
    ("phlebotomist1", "Ravi Prasad", Role::Phlebotomist),
    ("phlebotomist2", "Geetha M", Role::Phlebotomist),
    ("phlebotomist3", "Manoj Pillai", Role::Phlebotomist),
    ("rider1", "Kiran Rider", Role::Rider),
    ("rider2", "Vijay Rider", Role::Rider),
    ("rider3", "Salma Rider", Role::Rider),
    ("rider4", "Deepak Rider", Role::Rider),
    ("customer1", "Asha Customer", Role::Customer),
    ("customer2", "Rahul Customer", Role::Customer),
    ("donor1", "Nisha Donor", Role::Customer),
    ("donor2", "Farhan Donor", Role::Customer),
    ("donor3", "Pooja Donor", Role::Customer),
    ("donor4", "Kumar Donor", Role::Customer),
];

pub const DEMO_DOMAIN: &str = "demo.onemedi.in";

/// Creates the demo accounts and city, all or nothing, unless they exist. Returns false when already seeded.
pub async fn seed(conn: &mut Conn) -> anyhow::Result<bool> {
    let admin = format!("admin@{DEMO_DOMAIN}");
    if users::find_by_email(conn, &admin).await?.is_some() {
        return Ok(false);
    }
    // One hash for the shared demo password: demo accounts are for trying the product, not for secrecy.
    let hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    let now = super::now();
    let accounts: Vec<(String, &str, Role)> = DEMO_USERS
        .iter()
        .map(|(local, name, role)| (format!("{local}@{DEMO_DOMAIN}"), *name, *role))
        .collect();
    let hash = &hash;
    let accounts = &accounts;
    on_conn!(conn, c => c.transaction(async move |c| {
        for (email, name, role) in accounts {
            let new = users::NewUser {
                email: Some(email),
                phone: None,
                name,
                password_hash: Some(hash),
                role: role.as_str(),
                created_at: now,
                updated_at: now,
            };
            diesel::insert_into(super::schema::users::table)
                .values(&new)
                .execute(c)
                .await?;
        }
        c.batch_execute(DEMO_CITY_SQL).await?;
        c.batch_execute(DEMO_CARE_SQL).await?;
        Ok::<_, diesel::result::Error>(())
    }).await)?;
    super::donors::fill_missing_cells(conn).await?;
    Ok(true)
}

/// The printable list of demo logins.
pub fn logins() -> String {
    let mut text = format!("Demo accounts (password for all: {DEMO_PASSWORD}):\n");
    for (local, name, role) in DEMO_USERS {
        let email = format!("{local}@{DEMO_DOMAIN}");
        text.push_str(&format!("  {:<14} {email:<32} {name}\n", role.as_str()));
    }
    text
}
