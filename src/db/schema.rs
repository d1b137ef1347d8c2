//! Diesel table definitions shared by both backends (hand-kept in step with migrations/).

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        name -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    addresses (id) {
        id -> BigInt,
        user_id -> BigInt,
        label -> Text,
        line1 -> Text,
        line2 -> Nullable<Text>,
        city -> Text,
        state -> Text,
        pincode -> Text,
        lat -> Double,
        lng -> Double,
        is_default -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    otp_codes (id) {
        id -> BigInt,
        phone -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idem_key) {
        scope -> Text,
        idem_key -> Text,
        request_hash -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_content_type -> Nullable<Text>,
        response_body -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_user_id -> Nullable<BigInt>,
        action -> Text,
        subject_type -> Text,
        subject_id -> Nullable<Text>,
        details -> Text,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(addresses -> users (user_id));
diesel::joinable!(audit_log -> users (actor_user_id));

diesel::allow_tables_to_appear_in_same_query!(users, addresses, otp_codes, idempotency_keys, audit_log);
