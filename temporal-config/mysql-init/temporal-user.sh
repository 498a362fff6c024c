#!/bin/sh
# Run once by the mysql image on an empty data directory (docker-compose.yml mounts this
# directory at /docker-entrypoint-initdb.d): Temporal's own user, with its password from the
# operator's environment, allowed only Temporal's two databases.
set -eu
mysql -uroot -p"$MYSQL_ROOT_PASSWORD" <<SQL
CREATE USER IF NOT EXISTS 'temporal'@'%' IDENTIFIED BY '${TEMPORAL_MYSQL_PASSWORD}';
GRANT ALL PRIVILEGES ON \`temporal\`.* TO 'temporal'@'%';
GRANT ALL PRIVILEGES ON \`temporal_visibility\`.* TO 'temporal'@'%';
FLUSH PRIVILEGES;
SQL
