-- 0006_webhooks down (mysql): drops what 0006_webhooks.mysql.sql made, children first.
DROP TABLE IF EXISTS webhook_attempts;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_events;
DROP TABLE IF EXISTS webhook_endpoints;
