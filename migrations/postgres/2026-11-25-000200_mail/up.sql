-- E-mail: an appointment's reminder is claimed by setting reminder_sent_at (one conditional write, so two
-- nodes never both send it); order lines keep the GST rate they were sold at, for the invoice.
ALTER TABLE appointments ADD COLUMN reminder_sent_at TIMESTAMP;
ALTER TABLE order_items ADD COLUMN gst_rate_percent INTEGER;
