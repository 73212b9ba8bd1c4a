# Sourced by the influxdb:1.x image's init script on the first start only (an empty data volume),
# after it has created the database and the users; $INFLUX_CMD runs a statement as the admin.
# The database's default retention policy keeps INFLUX_RETENTION of points (e.g. 400d: a year of
# shifts plus a margin for comparisons with last year's same month).
$INFLUX_CMD "ALTER RETENTION POLICY \"autogen\" ON \"$INFLUXDB_DB\" DURATION $INFLUX_RETENTION DEFAULT"
