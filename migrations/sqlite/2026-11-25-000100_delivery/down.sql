DROP TABLE order_delivery_codes;
