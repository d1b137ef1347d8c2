DROP TABLE insurance_purchase_terms;
