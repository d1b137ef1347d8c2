ALTER TABLE order_items DROP COLUMN gst_rate_percent;
ALTER TABLE appointments DROP COLUMN reminder_sent_at;
