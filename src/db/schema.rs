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
    otp_request_windows (phone) {
        phone -> Text,
        window_start -> Timestamp,
        issued -> Integer,
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
        lease_token -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
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

diesel::table! {
    medicine_categories (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        image_url -> Nullable<Text>,
        sort_order -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    brands (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        manufacturer -> Nullable<Text>,
        logo_url -> Nullable<Text>,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    medicines (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        salt_composition -> Text,
        brand_id -> Nullable<BigInt>,
        category_id -> BigInt,
        description -> Nullable<Text>,
        dosage_form -> Text,
        pack_size -> Text,
        image_url -> Nullable<Text>,
        price_paise -> BigInt,
        mrp_paise -> BigInt,
        gst_rate_percent -> Integer,
        stock -> Integer,
        max_per_order -> Integer,
        prescription_required -> Bool,
        featured -> Bool,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    prescriptions (id) {
        id -> BigInt,
        user_id -> BigInt,
        file_path -> Text,
        original_filename -> Nullable<Text>,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        patient_name -> Nullable<Text>,
        doctor_name -> Nullable<Text>,
        status -> Text,
        reviewed_by -> Nullable<BigInt>,
        reviewed_at -> Nullable<Timestamp>,
        review_notes -> Nullable<Text>,
        valid_until -> Nullable<Date>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lab_categories (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        sort_order -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lab_tests (id) {
        id -> BigInt,
        category_id -> BigInt,
        code -> Text,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        sample_type -> Text,
        stability_hours -> Integer,
        fasting_hours -> Integer,
        turnaround_hours -> Integer,
        price_paise -> BigInt,
        mrp_paise -> BigInt,
        is_package -> Bool,
        home_collection -> Bool,
        featured -> Bool,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lab_test_package_items (id) {
        id -> BigInt,
        package_id -> BigInt,
        test_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    homecare_services (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        category -> Text,
        description -> Nullable<Text>,
        price_paise -> BigInt,
        price_unit -> Text,
        duration_minutes -> Integer,
        image_url -> Nullable<Text>,
        sort_order -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    insurance_plans (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        insurer -> Text,
        plan_type -> Text,
        description -> Nullable<Text>,
        cover_paise -> BigInt,
        premium_paise -> BigInt,
        tenure_months -> Integer,
        initial_waiting_days -> Integer,
        pre_existing_waiting_days -> Integer,
        min_entry_age -> Integer,
        max_entry_age -> Integer,
        max_members -> Integer,
        features -> Text,
        sort_order -> Integer,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        user_id -> BigInt,
        purpose -> Text,
        reference_id -> BigInt,
        provider -> Text,
        provider_order_id -> Text,
        provider_payment_id -> Nullable<Text>,
        provider_signature -> Nullable<Text>,
        method -> Nullable<Text>,
        amount_paise -> BigInt,
        refunded_paise -> BigInt,
        currency -> Text,
        status -> Text,
        failure_reason -> Nullable<Text>,
        captured_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_events (id) {
        id -> BigInt,
        provider -> Text,
        provider_event_id -> Text,
        event_type -> Text,
        payment_id -> Nullable<BigInt>,
        payload -> Text,
        signature_valid -> Bool,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refunds (id) {
        id -> BigInt,
        payment_id -> BigInt,
        amount_paise -> BigInt,
        reason -> Text,
        status -> Text,
        provider_refund_id -> Nullable<Text>,
        requested_by -> Nullable<BigInt>,
        processed_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    hospitals (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        address -> Text,
        city -> Text,
        pincode -> Text,
        phone -> Nullable<Text>,
        lat -> Double,
        lng -> Double,
        h3_cell -> Nullable<BigInt>,
        emergency_capable -> Bool,
        specialties -> Text,
        beds_general_total -> Integer,
        beds_general_available -> Integer,
        beds_icu_total -> Integer,
        beds_icu_available -> Integer,
        beds_emergency_total -> Integer,
        beds_emergency_available -> Integer,
        partner_user_id -> Nullable<BigInt>,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    doctors (id) {
        id -> BigInt,
        user_id -> BigInt,
        hospital_id -> Nullable<BigInt>,
        specialty -> Text,
        qualifications -> Text,
        registration_number -> Nullable<Text>,
        experience_years -> Integer,
        languages -> Text,
        fee_paise -> BigInt,
        video_enabled -> Bool,
        rating -> Double,
        rating_count -> Integer,
        bio -> Nullable<Text>,
        photo_url -> Nullable<Text>,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    doctor_schedules (id) {
        id -> BigInt,
        doctor_id -> BigInt,
        weekday -> Integer,
        start_minute -> Integer,
        end_minute -> Integer,
        slot_minutes -> Integer,
        mode -> Text,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    doctor_slots (id) {
        id -> BigInt,
        doctor_id -> BigInt,
        slot_start -> Timestamp,
        slot_end -> Timestamp,
        mode -> Text,
        status -> Text,
        held_by -> Nullable<BigInt>,
        hold_expires_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    appointments (id) {
        id -> BigInt,
        slot_id -> BigInt,
        user_id -> BigInt,
        doctor_id -> BigInt,
        patient_name -> Text,
        reason -> Nullable<Text>,
        mode -> Text,
        status -> Text,
        fee_paise -> BigInt,
        payment_id -> Nullable<BigInt>,
        video_room -> Nullable<Text>,
        doctor_notes -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        reminder_sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    service_bookings (id) {
        id -> BigInt,
        user_id -> BigInt,
        service_id -> BigInt,
        address_id -> Nullable<BigInt>,
        patient_name -> Text,
        contact_phone -> Text,
        address_text -> Text,
        lat -> Double,
        lng -> Double,
        h3_cell -> Nullable<BigInt>,
        slot_date -> Date,
        slot_window -> Text,
        quantity -> Integer,
        price_paise -> BigInt,
        payment_id -> Nullable<BigInt>,
        status -> Text,
        partner_user_id -> Nullable<BigInt>,
        assigned_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        cancel_reason -> Nullable<Text>,
        notes -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    insurance_purchases (id) {
        id -> BigInt,
        user_id -> BigInt,
        plan_id -> BigInt,
        status -> Text,
        policy_number -> Nullable<Text>,
        proposer_name -> Text,
        insured_members -> Text,
        cover_paise -> BigInt,
        premium_paise -> BigInt,
        starts_on -> Nullable<Date>,
        ends_on -> Nullable<Date>,
        payment_id -> Nullable<BigInt>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    units (id) {
        id -> BigInt,
        call_sign -> Text,
        kind -> Text,
        status -> Text,
        capabilities -> Integer,
        request_kind -> Nullable<Text>,
        request_id -> Nullable<BigInt>,
        vehicle_number -> Nullable<Text>,
        station_name -> Nullable<Text>,
        home_lat -> Double,
        home_lng -> Double,
        last_lat -> Nullable<Double>,
        last_lng -> Nullable<Double>,
        last_heading -> Nullable<Double>,
        last_speed_mps -> Nullable<Double>,
        last_h3_cell -> Nullable<BigInt>,
        last_seen_at -> Nullable<Timestamp>,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    unit_crew (id) {
        id -> BigInt,
        unit_id -> BigInt,
        user_id -> BigInt,
        crew_role -> Text,
        is_lead -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    unit_positions (id) {
        id -> BigInt,
        unit_id -> BigInt,
        lat -> Double,
        lng -> Double,
        heading -> Nullable<Double>,
        speed_mps -> Nullable<Double>,
        h3_cell -> Nullable<BigInt>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    dispatch_offers (id) {
        id -> BigInt,
        request_kind -> Text,
        request_id -> BigInt,
        unit_id -> BigInt,
        status -> Text,
        distance_m -> Nullable<Double>,
        eta_seconds -> Nullable<Integer>,
        decline_reason -> Nullable<Text>,
        offered_at -> Timestamp,
        expires_at -> Timestamp,
        responded_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    entity_transitions (id) {
        id -> BigInt,
        entity_type -> Text,
        entity_id -> BigInt,
        event -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor_user_id -> Nullable<BigInt>,
        actor_unit_id -> Nullable<BigInt>,
        reason -> Nullable<Text>,
        command_id -> Nullable<Text>,
        details -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    phlebotomists (id) {
        id -> BigInt,
        user_id -> BigInt,
        unit_id -> Nullable<BigInt>,
        home_lat -> Double,
        home_lng -> Double,
        home_h3_cell -> Nullable<BigInt>,
        work_start_minute -> Integer,
        work_end_minute -> Integer,
        capacity_per_window -> Integer,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lab_collections (id) {
        id -> BigInt,
        user_id -> BigInt,
        address_id -> Nullable<BigInt>,
        patient_name -> Text,
        patient_age -> Nullable<Integer>,
        patient_gender -> Nullable<Text>,
        contact_phone -> Text,
        address_text -> Text,
        lat -> Double,
        lng -> Double,
        h3_cell -> Nullable<BigInt>,
        slot_date -> Date,
        slot_window -> Text,
        status -> Text,
        phlebotomist_id -> Nullable<BigInt>,
        unassigned_reason -> Nullable<Text>,
        total_paise -> BigInt,
        payment_id -> Nullable<BigInt>,
        assigned_at -> Nullable<Timestamp>,
        collected_at -> Nullable<Timestamp>,
        at_lab_at -> Nullable<Timestamp>,
        report_path -> Nullable<Text>,
        report_ready_at -> Nullable<Timestamp>,
        cancel_reason -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    phlebotomist_window_loads (phlebotomist_id, slot_date, slot_window) {
        phlebotomist_id -> BigInt,
        slot_date -> Date,
        slot_window -> Text,
        assigned -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lab_collection_items (id) {
        id -> BigInt,
        lab_collection_id -> BigInt,
        lab_test_id -> BigInt,
        test_name -> Text,
        sample_type -> Text,
        stability_hours -> Integer,
        price_paise -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ambulance_requests (id) {
        id -> BigInt,
        requester_user_id -> BigInt,
        pickup_lat -> Double,
        pickup_lng -> Double,
        pickup_address -> Nullable<Text>,
        h3_cell -> Nullable<BigInt>,
        category -> Integer,
        patient_name -> Nullable<Text>,
        patient_age -> Nullable<Integer>,
        patient_phone -> Nullable<Text>,
        patient_condition -> Nullable<Text>,
        notes -> Nullable<Text>,
        status -> Text,
        assigned_unit_id -> Nullable<BigInt>,
        destination_hospital_id -> Nullable<BigInt>,
        cancel_reason -> Nullable<Text>,
        escalation_level -> Integer,
        version -> BigInt,
        call_received_at -> Timestamp,
        notified_at -> Nullable<Timestamp>,
        en_route_at -> Nullable<Timestamp>,
        on_scene_at -> Nullable<Timestamp>,
        transporting_at -> Nullable<Timestamp>,
        at_destination_at -> Nullable<Timestamp>,
        handed_over_at -> Nullable<Timestamp>,
        back_in_service_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        dispatch_node -> Nullable<Text>,
        dispatch_lease_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    blood_banks (id) {
        id -> BigInt,
        name -> Text,
        partner_user_id -> Nullable<BigInt>,
        hospital_id -> Nullable<BigInt>,
        license_number -> Nullable<Text>,
        phone -> Nullable<Text>,
        address -> Text,
        lat -> Double,
        lng -> Double,
        h3_cell -> Nullable<BigInt>,
        open_24x7 -> Bool,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    blood_stock (id) {
        id -> BigInt,
        blood_bank_id -> BigInt,
        blood_group -> Text,
        component -> Text,
        units_available -> Integer,
        units_reserved -> Integer,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    donor_profiles (id) {
        id -> BigInt,
        user_id -> BigInt,
        blood_group -> Text,
        last_donation_date -> Nullable<Date>,
        lat -> Double,
        lng -> Double,
        h3_cell -> Nullable<BigInt>,
        available -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    blood_requests (id) {
        id -> BigInt,
        requester_user_id -> BigInt,
        patient_name -> Text,
        contact_phone -> Text,
        blood_group -> Text,
        component -> Text,
        units_needed -> Integer,
        hospital_id -> Nullable<BigInt>,
        lat -> Nullable<Double>,
        lng -> Nullable<Double>,
        h3_cell -> Nullable<BigInt>,
        urgency -> Text,
        expires_at -> Timestamp,
        notes -> Nullable<Text>,
        status -> Text,
        units_reserved -> Integer,
        units_pledged -> Integer,
        fulfilled_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    blood_reservations (id) {
        id -> BigInt,
        request_id -> BigInt,
        blood_stock_id -> BigInt,
        reserved_units -> Integer,
        status -> Text,
        expires_at -> Timestamp,
        collected_at -> Nullable<Timestamp>,
        released_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    blood_pledges (id) {
        id -> BigInt,
        request_id -> BigInt,
        donor_user_id -> BigInt,
        status -> Text,
        pledged_units -> Integer,
        eta_at -> Nullable<Timestamp>,
        donated_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    coupons (id) {
        id -> BigInt,
        code -> Text,
        description -> Text,
        kind -> Text,
        value -> BigInt,
        applies_to -> Text,
        min_order_paise -> BigInt,
        max_discount_paise -> Nullable<BigInt>,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        global_limit -> Nullable<Integer>,
        per_user_limit -> Nullable<Integer>,
        first_order_only -> Bool,
        used_count -> Integer,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    banners (id) {
        id -> BigInt,
        title -> Text,
        subtitle -> Nullable<Text>,
        image_url -> Text,
        link_url -> Nullable<Text>,
        placement -> Text,
        starts_at -> Nullable<Timestamp>,
        ends_at -> Nullable<Timestamp>,
        sort_order -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    offers (id) {
        id -> BigInt,
        title -> Text,
        description -> Text,
        image_url -> Nullable<Text>,
        badge -> Nullable<Text>,
        applies_to -> Text,
        coupon_id -> Nullable<BigInt>,
        terms -> Nullable<Text>,
        starts_at -> Nullable<Timestamp>,
        ends_at -> Nullable<Timestamp>,
        sort_order -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    campaigns (id) {
        id -> BigInt,
        name -> Text,
        channel -> Text,
        audience -> Text,
        title -> Text,
        body -> Text,
        data -> Text,
        status -> Text,
        scheduled_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        sent_count -> Integer,
        created_by -> Nullable<BigInt>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        title -> Text,
        body -> Text,
        data -> Text,
        campaign_id -> Nullable<BigInt>,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cart_items (id) {
        id -> BigInt,
        user_id -> BigInt,
        medicine_id -> BigInt,
        quantity -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        order_number -> Text,
        user_id -> BigInt,
        address_id -> Nullable<BigInt>,
        ship_name -> Text,
        ship_phone -> Text,
        ship_address -> Text,
        ship_city -> Text,
        ship_pincode -> Text,
        ship_lat -> Double,
        ship_lng -> Double,
        status -> Text,
        subtotal_paise -> BigInt,
        discount_paise -> BigInt,
        tax_paise -> BigInt,
        delivery_paise -> BigInt,
        total_paise -> BigInt,
        coupon_id -> Nullable<BigInt>,
        prescription_id -> Nullable<BigInt>,
        payment_method -> Text,
        payment_status -> Text,
        rider_unit_id -> Nullable<BigInt>,
        delivery_code_hash -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        version -> BigInt,
        placed_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        dispatch_node -> Nullable<Text>,
        dispatch_lease_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    order_items (id) {
        id -> BigInt,
        order_id -> BigInt,
        medicine_id -> BigInt,
        medicine_name -> Text,
        prescription_required -> Bool,
        unit_price_paise -> BigInt,
        mrp_paise -> BigInt,
        quantity -> Integer,
        line_total_paise -> BigInt,
        created_at -> Timestamp,
        gst_rate_percent -> Nullable<Integer>,
    }
}

diesel::table! {
    coupon_redemptions (id) {
        id -> BigInt,
        coupon_id -> BigInt,
        user_id -> BigInt,
        order_id -> BigInt,
        discount_paise -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    care_partners (id) {
        id -> BigInt,
        user_id -> BigInt,
        home_lat -> Double,
        home_lng -> Double,
        service_radius_km -> Integer,
        work_start_minute -> Integer,
        work_end_minute -> Integer,
        capacity_per_window -> Integer,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    care_partner_services (partner_id, service_id) {
        partner_id -> BigInt,
        service_id -> BigInt,
    }
}

diesel::table! {
    care_partner_window_loads (partner_id, slot_date, slot_window) {
        partner_id -> BigInt,
        slot_date -> Date,
        slot_window -> Text,
        booked -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    insurance_purchase_terms (purchase_id) {
        purchase_id -> BigInt,
        plan_name -> Text,
        insurer -> Text,
        tenure_months -> Integer,
        initial_waiting_days -> Integer,
        pre_existing_waiting_days -> Integer,
        created_at -> Timestamp,
    }
}

diesel::joinable!(addresses -> users (user_id));
diesel::joinable!(audit_log -> users (actor_user_id));
diesel::joinable!(medicines -> brands (brand_id));
diesel::joinable!(medicines -> medicine_categories (category_id));
diesel::joinable!(prescriptions -> users (user_id));
diesel::joinable!(lab_tests -> lab_categories (category_id));
diesel::joinable!(payments -> users (user_id));
diesel::joinable!(payment_events -> payments (payment_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(refunds -> users (requested_by));
diesel::joinable!(hospitals -> users (partner_user_id));
diesel::joinable!(doctors -> users (user_id));
diesel::joinable!(doctors -> hospitals (hospital_id));
diesel::joinable!(doctor_schedules -> doctors (doctor_id));
diesel::joinable!(doctor_slots -> doctors (doctor_id));
diesel::joinable!(doctor_slots -> users (held_by));
diesel::joinable!(appointments -> doctor_slots (slot_id));
diesel::joinable!(appointments -> users (user_id));
diesel::joinable!(appointments -> doctors (doctor_id));
diesel::joinable!(appointments -> payments (payment_id));
diesel::joinable!(service_bookings -> users (user_id));
diesel::joinable!(service_bookings -> homecare_services (service_id));
diesel::joinable!(service_bookings -> addresses (address_id));
diesel::joinable!(service_bookings -> payments (payment_id));
diesel::joinable!(insurance_purchases -> users (user_id));
diesel::joinable!(insurance_purchases -> insurance_plans (plan_id));
diesel::joinable!(insurance_purchases -> payments (payment_id));
diesel::joinable!(unit_crew -> units (unit_id));
diesel::joinable!(unit_crew -> users (user_id));
diesel::joinable!(unit_positions -> units (unit_id));
diesel::joinable!(dispatch_offers -> units (unit_id));
diesel::joinable!(entity_transitions -> users (actor_user_id));
diesel::joinable!(entity_transitions -> units (actor_unit_id));
diesel::joinable!(phlebotomists -> users (user_id));
diesel::joinable!(phlebotomists -> units (unit_id));
diesel::joinable!(lab_collections -> users (user_id));
diesel::joinable!(lab_collections -> addresses (address_id));
diesel::joinable!(lab_collections -> phlebotomists (phlebotomist_id));
diesel::joinable!(lab_collections -> payments (payment_id));
diesel::joinable!(lab_collection_items -> lab_collections (lab_collection_id));
diesel::joinable!(phlebotomist_window_loads -> phlebotomists (phlebotomist_id));
diesel::joinable!(lab_collection_items -> lab_tests (lab_test_id));
diesel::joinable!(ambulance_requests -> users (requester_user_id));
diesel::joinable!(ambulance_requests -> units (assigned_unit_id));
diesel::joinable!(ambulance_requests -> hospitals (destination_hospital_id));
diesel::joinable!(blood_banks -> users (partner_user_id));
diesel::joinable!(blood_banks -> hospitals (hospital_id));
diesel::joinable!(blood_stock -> blood_banks (blood_bank_id));
diesel::joinable!(donor_profiles -> users (user_id));
diesel::joinable!(blood_requests -> users (requester_user_id));
diesel::joinable!(blood_requests -> hospitals (hospital_id));
diesel::joinable!(blood_reservations -> blood_requests (request_id));
diesel::joinable!(blood_reservations -> blood_stock (blood_stock_id));
diesel::joinable!(blood_pledges -> blood_requests (request_id));
diesel::joinable!(blood_pledges -> users (donor_user_id));
diesel::joinable!(offers -> coupons (coupon_id));
diesel::joinable!(campaigns -> users (created_by));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(notifications -> campaigns (campaign_id));
diesel::joinable!(cart_items -> users (user_id));
diesel::joinable!(cart_items -> medicines (medicine_id));
diesel::joinable!(orders -> users (user_id));
diesel::joinable!(orders -> addresses (address_id));
diesel::joinable!(orders -> coupons (coupon_id));
diesel::joinable!(orders -> prescriptions (prescription_id));
diesel::joinable!(orders -> units (rider_unit_id));
diesel::table! {
    order_delivery_codes (order_id) {
        order_id -> BigInt,
        code_sealed -> Text,
        attempts -> Integer,
        created_at -> Timestamp,
    }
}

diesel::joinable!(order_delivery_codes -> orders (order_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(order_items -> medicines (medicine_id));
diesel::joinable!(coupon_redemptions -> coupons (coupon_id));
diesel::joinable!(coupon_redemptions -> users (user_id));
diesel::joinable!(coupon_redemptions -> orders (order_id));

diesel::joinable!(care_partners -> users (user_id));
diesel::joinable!(care_partner_services -> care_partners (partner_id));
diesel::joinable!(care_partner_services -> homecare_services (service_id));
diesel::joinable!(care_partner_window_loads -> care_partners (partner_id));
diesel::joinable!(insurance_purchase_terms -> insurance_purchases (purchase_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    care_partners,
    care_partner_services,
    care_partner_window_loads,
    insurance_purchase_terms,
    order_delivery_codes,
    addresses,
    otp_codes,
    idempotency_keys,
    otp_request_windows,
    audit_log,
    medicine_categories,
    brands,
    medicines,
    prescriptions,
    lab_categories,
    lab_tests,
    lab_test_package_items,
    homecare_services,
    insurance_plans,
    payments,
    payment_events,
    refunds,
    hospitals,
    doctors,
    doctor_schedules,
    doctor_slots,
    appointments,
    service_bookings,
    insurance_purchases,
    units,
    unit_crew,
    unit_positions,
    dispatch_offers,
    entity_transitions,
    phlebotomists,
    lab_collections,
    phlebotomist_window_loads,
    lab_collection_items,
    ambulance_requests,
    blood_banks,
    blood_stock,
    donor_profiles,
    blood_requests,
    blood_reservations,
    blood_pledges,
    coupons,
    banners,
    offers,
    campaigns,
    notifications,
    cart_items,
    orders,
    order_items,
    coupon_redemptions,
);
