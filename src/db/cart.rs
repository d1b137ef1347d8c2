//! Queries on a customer's cart; every query is scoped to its owner.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    catalog::Medicine,
    schema::{cart_items, medicines},
};
use crate::{db::prepared::PreparedExt, on_conn};

/// Most distinct medicines one cart may hold.
pub const MAX_CART_LINES: i64 = 50;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = cart_items)]
pub struct CartItem {
    pub id: i64,
    pub user_id: i64,
    pub medicine_id: i64,
    pub quantity: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The cart's lines with their medicines, oldest first.
pub async fn lines(conn: &mut Conn, user_id: i64) -> QueryResult<Vec<(CartItem, Medicine)>> {
    on_conn!(conn, c => cart_items::table
        .inner_join(medicines::table)
        .filter(cart_items::user_id.eq(user_id))
        .order(cart_items::id.asc())
        .select((CartItem::as_select(), Medicine::as_select()))
        .load(c)
        .await)
}

pub async fn find_owned(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<Option<(CartItem, Medicine)>> {
    on_conn!(conn, c => cart_items::table
        .inner_join(medicines::table)
        .filter(cart_items::id.eq(id).and(cart_items::user_id.eq(user_id)))
        .select((CartItem::as_select(), Medicine::as_select()))
        .first(c)
        .await
        .optional())
}

/// What adding to the cart found.
#[derive(Debug)]
pub enum AddOutcome {
    /// The line now holds this quantity.
    Saved(CartItem),
    /// No active medicine with that id.
    NoMedicine,
    /// The new quantity would exceed what may be ordered (`max_per_order`) or what is in stock.
    TooMany { medicine: Box<Medicine>, wanted: i32 },
    /// The cart already holds [`MAX_CART_LINES`] other medicines.
    CartFull,
}

/// Adds `quantity` to the line of `medicine_id` in one statement when the medicine, its limit, its stock
/// and the cart's size allow it: an insert of the line, or on conflict with the existing line an
/// increment whose WHERE holds the limit, so concurrent adds never lose one another. `None` means the
/// statement changed nothing; [`add`] then says why.
///
/// Written for PostgreSQL, run on either backend through [`super::sql_text`].
const ADD_LINE_SQL: &str = "\
INSERT INTO cart_items (user_id, medicine_id, quantity, created_at, updated_at) \
SELECT $1, m.id, $3, $4, $4 FROM medicines m \
WHERE m.id = $2 AND m.is_active AND $3 <= m.max_per_order AND $3 <= m.stock \
  AND ((SELECT count(*) FROM cart_items l WHERE l.user_id = $1) < $5 \
       OR EXISTS (SELECT 1 FROM cart_items l WHERE l.user_id = $1 AND l.medicine_id = $2)) \
ON CONFLICT (user_id, medicine_id) DO UPDATE \
SET quantity = cart_items.quantity + excluded.quantity, updated_at = excluded.updated_at \
WHERE cart_items.quantity + excluded.quantity <= (SELECT CASE WHEN m.max_per_order < m.stock \
  THEN m.max_per_order ELSE m.stock END FROM medicines m WHERE m.id = excluded.medicine_id) \
RETURNING id, user_id, medicine_id, quantity, created_at, updated_at";

/// The one-statement add of [`ADD_LINE_SQL`]: the line as saved, or `None` when nothing was written.
pub async fn add_line(
    conn: &mut Conn,
    user_id: i64,
    medicine_id: i64,
    quantity: i32,
) -> QueryResult<Option<CartItem>> {
    use diesel::sql_types::{BigInt, Integer, Timestamp};
    let now = super::now();
    let text = super::sql_text(conn, ADD_LINE_SQL);
    on_conn!(conn, c => diesel::sql_query(text.as_ref())
        .bind::<BigInt, _>(user_id)
        .bind::<BigInt, _>(medicine_id)
        .bind::<Integer, _>(quantity)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(MAX_CART_LINES)
        .prepared()
        .get_result::<CartItem>(c)
        .await
        .optional())
}

/// Adds `quantity` to the line of `medicine_id` (creating it), checked against the medicine's limit and
/// stock. Stock is only *claimed* at checkout; this check is a courtesy. The common case is the one
/// statement of [`add_line`]; when it writes nothing, the same checks run again step by step in a
/// transaction to find the reason (or to save the line, if stock arrived in between).
pub async fn add(conn: &mut Conn, user_id: i64, medicine_id: i64, quantity: i32) -> QueryResult<AddOutcome> {
    if let Some(item) = add_line(conn, user_id, medicine_id, quantity).await? {
        return Ok(AddOutcome::Saved(item));
    }
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let Some(medicine) = medicines::table
            .filter(medicines::id.eq(medicine_id).and(medicines::is_active.eq(true)))
            .select(Medicine::as_select())
            .first(c)
            .await
            .optional()?
        else {
            return Ok(AddOutcome::NoMedicine);
        };
        let existing = cart_items::table
            .filter(cart_items::user_id.eq(user_id).and(cart_items::medicine_id.eq(medicine_id)))
            .select(CartItem::as_select())
            .first(c)
            .await
            .optional()?;
        let wanted = existing.as_ref().map_or(0, |item| item.quantity).saturating_add(quantity);
        if wanted > medicine.max_per_order || wanted > medicine.stock {
            return Ok(AddOutcome::TooMany { medicine: Box::new(medicine), wanted });
        }
        let item = match existing {
            Some(item) => {
                // An increment with the limit in the WHERE: concurrent adds never lose one another.
                let ceiling = medicine.max_per_order.min(medicine.stock);
                let updated = diesel::update(cart_items::table.filter(
                    cart_items::id.eq(item.id).and(cart_items::quantity.le(ceiling - quantity)),
                ))
                .set((cart_items::quantity.eq(cart_items::quantity + quantity), cart_items::updated_at.eq(now)))
                .returning(CartItem::as_returning())
                .get_result(c)
                .await
                .optional()?;
                match updated {
                    Some(item) => item,
                    None => return Ok(AddOutcome::TooMany { medicine: Box::new(medicine), wanted }),
                }
            }
            None => {
                let lines: i64 = cart_items::table.filter(cart_items::user_id.eq(user_id)).count().get_result(c).await?;
                if lines >= MAX_CART_LINES {
                    return Ok(AddOutcome::CartFull);
                }
                diesel::insert_into(cart_items::table)
                    .values((
                        cart_items::user_id.eq(user_id),
                        cart_items::medicine_id.eq(medicine_id),
                        cart_items::quantity.eq(wanted),
                        cart_items::created_at.eq(now),
                        cart_items::updated_at.eq(now),
                    ))
                    .returning(CartItem::as_returning())
                    .get_result(c)
                    .await?
            }
        };
        Ok(AddOutcome::Saved(item))
    }).await)
}

/// Sets an owned line's quantity; `None` when the line is not this user's.
pub async fn set_quantity(
    conn: &mut Conn,
    user_id: i64,
    id: i64,
    quantity: i32,
) -> QueryResult<Option<CartItem>> {
    let now = super::now();
    on_conn!(conn, c => diesel::update(cart_items::table.filter(cart_items::id.eq(id).and(cart_items::user_id.eq(user_id))))
        .set((cart_items::quantity.eq(quantity), cart_items::updated_at.eq(now)))
        .returning(CartItem::as_returning())
        .get_result(c)
        .await
        .optional())
}

/// Deletes an owned line; false when it is not this user's.
pub async fn delete_owned(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<bool> {
    let deleted = on_conn!(conn, c => diesel::delete(
        cart_items::table.filter(cart_items::id.eq(id).and(cart_items::user_id.eq(user_id))),
    )
    .execute(c)
    .await)?;
    Ok(deleted == 1)
}
