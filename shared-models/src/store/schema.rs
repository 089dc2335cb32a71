// @generated automatically by Diesel CLI.

diesel::table! {
    accepted_receipts (merchant_id, transaction_id) {
        merchant_id -> Text,
        transaction_id -> Text,
        place_id -> Text,
        content_hash -> Text,
        receipt -> Json,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        token_hash -> Text,
        role -> Text,
        merchant_id -> Nullable<Text>,
        name -> Nullable<Text>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    checked_place_hour_categories (place_id, start, category) {
        place_id -> Text,
        start -> Timestamptz,
        category -> Text,
        receipts -> Int8,
        spent -> Numeric,
    }
}

diesel::table! {
    checked_place_hours (place_id, start) {
        place_id -> Text,
        start -> Timestamptz,
        checked_through -> Timestamptz,
        purchases -> Int8,
        total_amount -> Numeric,
        vat_amount -> Numeric,
        tips_amount -> Numeric,
    }
}

diesel::table! {
    hourly_runs (slot) {
        slot -> Timestamptz,
        runs -> Int4,
        buckets -> Int8,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        job_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        kind -> Text,
        status -> Text,
        payload -> Jsonb,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    merchant_category_rollups (merchant_id, grain, start, category) {
        merchant_id -> Text,
        grain -> Text,
        start -> Timestamptz,
        category -> Text,
        receipts -> Int8,
        spent -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    merchant_rollups (merchant_id, grain, start) {
        merchant_id -> Text,
        grain -> Text,
        start -> Timestamptz,
        purchases -> Int8,
        total_amount -> Numeric,
        vat_amount -> Numeric,
        tips_amount -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        merchant_id -> Text,
        transaction_id -> Text,
        message_key -> Text,
        created_at -> Timestamptz,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        replays -> Int4,
    }
}

diesel::table! {
    place_category_rollups (place_id, grain, start, category) {
        place_id -> Text,
        grain -> Text,
        start -> Timestamptz,
        category -> Text,
        receipts -> Int8,
        spent -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    place_rollups (place_id, grain, start) {
        place_id -> Text,
        grain -> Text,
        start -> Timestamptz,
        purchases -> Int8,
        total_amount -> Numeric,
        vat_amount -> Numeric,
        tips_amount -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    places (place_id) {
        place_id -> Text,
        merchant_id -> Text,
        place_name -> Nullable<Text>,
        total_purchases -> Int8,
        first_purchase_at -> Nullable<Timestamptz>,
        last_purchase_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    receipt_lines (receipt_id, line_no) {
        receipt_id -> Int8,
        line_no -> Int4,
        product_id -> Text,
        category -> Text,
        quantity -> Numeric,
        price -> Numeric,
        amount -> Numeric,
    }
}

diesel::table! {
    receipt_log (id) {
        id -> Int8,
        merchant_id -> Nullable<Text>,
        transaction_id -> Nullable<Text>,
        outcome -> Text,
        reasons -> Nullable<Jsonb>,
        rejected_body -> Nullable<Text>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    receipt_publications (merchant_id, transaction_id) {
        merchant_id -> Text,
        transaction_id -> Text,
        published_at -> Timestamptz,
        replays -> Int4,
        check_due_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    reconcile_progress (singleton) {
        singleton -> Bool,
        checked_until -> Timestamptz,
    }
}

diesel::table! {
    receipts (id) {
        id -> Int8,
        merchant_id -> Text,
        transaction_id -> Text,
        place_id -> Text,
        purchased_at -> Timestamptz,
        total_amount -> Numeric,
        vat_amount -> Numeric,
        tips_amount -> Numeric,
        payment_method -> Text,
        received_at -> Timestamptz,
        stored_at -> Timestamptz,
    }
}

diesel::table! {
    total_category_rollups (grain, start, category) {
        grain -> Text,
        start -> Timestamptz,
        category -> Text,
        receipts -> Int8,
        spent -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    total_rollups (grain, start) {
        grain -> Text,
        start -> Timestamptz,
        purchases -> Int8,
        total_amount -> Numeric,
        vat_amount -> Numeric,
        tips_amount -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::joinable!(accepted_receipts -> places (place_id));

diesel::allow_tables_to_appear_in_same_query!(
    accepted_receipts,
    api_tokens,
    checked_place_hour_categories,
    checked_place_hours,
    hourly_runs,
    jobs,
    merchant_category_rollups,
    merchant_rollups,
    outbox,
    place_category_rollups,
    place_rollups,
    places,
    receipt_lines,
    receipt_log,
    receipt_publications,
    reconcile_progress,
    receipts,
    total_category_rollups,
    total_rollups,
);
