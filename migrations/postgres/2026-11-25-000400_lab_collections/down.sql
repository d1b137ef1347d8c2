DROP TABLE phlebotomist_window_loads;
