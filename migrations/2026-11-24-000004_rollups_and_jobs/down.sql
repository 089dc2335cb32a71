DROP TABLE hourly_runs; DROP TABLE jobs; DROP TABLE category_hour_rollups; DROP TABLE place_hour_rollups;
