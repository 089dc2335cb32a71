DROP INDEX receipts_place_stored;
DROP TABLE checked_place_hour_categories;
DROP TABLE checked_place_hours;
