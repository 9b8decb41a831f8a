#include "statestore/mysql/mysql_store.hpp"

#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "statestore/mysql/mysql_connection.hpp"
#include "statestore/queued_store.hpp"
#include "statestore/server_writer.hpp"
#include "statestore/snapshot_codec.hpp"
#include "statestore/store_requests.hpp"

namespace spawn::statestore::mysql {

namespace {

// Migration i (0-based) takes the schema from version i to version i + 1, as a list of
// statements (MySQL runs DDL outside transactions, so each is idempotent: IF NOT EXISTS). Never
// edit a released entry; append a new one.
const std::vector<std::vector<const char*>> kMigrations = {
    // Version 1. `snapshots` holds each actor's current revision, `historical_snapshots` every
    // revision it replaced (PROTOCOL.md §6), `scheduled_invocations` each delayed invocation
    // (§5.6). `data` and `request` are the (encrypted) blobs; tags are a JSON object in clear.
    // utf8mb4_bin: names compare and sort bytewise ("Counter" is not "counter").
    {
        R"sql(
      CREATE TABLE IF NOT EXISTS snapshots (
        `system`    VARCHAR(255)  NOT NULL,
        actor       VARCHAR(255)  NOT NULL,
        status      VARCHAR(16)   NOT NULL,
        node        VARCHAR(255)  NOT NULL,
        revision    BIGINT        NOT NULL,
        tags        LONGTEXT      NOT NULL,
        data_type   VARCHAR(2048) NOT NULL,
        data        LONGBLOB,
        has_state   BOOLEAN       NOT NULL,
        inserted_at DATETIME(6)   NOT NULL,
        updated_at  DATETIME(6)   NOT NULL,
        PRIMARY KEY (`system`, actor)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
    )sql",
        R"sql(
      CREATE TABLE IF NOT EXISTS historical_snapshots (
        `system`    VARCHAR(255)  NOT NULL,
        actor       VARCHAR(255)  NOT NULL,
        revision    BIGINT        NOT NULL,
        status      VARCHAR(16)   NOT NULL,
        node        VARCHAR(255)  NOT NULL,
        tags        LONGTEXT      NOT NULL,
        data_type   VARCHAR(2048) NOT NULL,
        data        LONGBLOB,
        has_state   BOOLEAN       NOT NULL,
        inserted_at DATETIME(6)   NOT NULL,
        updated_at  DATETIME(6)   NOT NULL,
        valid_from  DATETIME(6)   NOT NULL,
        valid_to    DATETIME(6)   NOT NULL,
        PRIMARY KEY (`system`, actor, revision)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
    )sql",
        R"sql(
      CREATE TABLE IF NOT EXISTS scheduled_invocations (
        id          VARCHAR(255)  NOT NULL PRIMARY KEY,
        due_ms      BIGINT        NOT NULL,
        `system`    VARCHAR(255)  NOT NULL,
        actor       VARCHAR(255)  NOT NULL,
        request     LONGBLOB      NOT NULL,
        inserted_at DATETIME(6)   NOT NULL,
        INDEX scheduled_invocations_due (due_ms, id)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
    )sql",
    },
};

constexpr const char* kColumns = "revision, status, node, tags, data_type, data, has_state";

// How often a transaction that deadlocked or timed out on a lock held by another process runs
// again before giving up.
constexpr int kMaxRetries = 8;

// Runs every pending migration. A named lock keeps two processes that start at once from
// migrating together.
Result<void> migrate(Connection& db) {
  if (Result<Rows> locked = db.exec("SELECT GET_LOCK('spawn_statestore_migration', 60)"); !locked) {
    return std::move(locked).error();
  }
  auto step = [&]() -> Result<void> {
    if (Result<Rows> created =
            db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL PRIMARY KEY, "
                    "applied_at DATETIME(6) NOT NULL) ENGINE = InnoDB");
        !created) {
      return std::move(created).error();
    }
    for (;;) {
      Result<Rows> current = db.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      if (!current) {
        return std::move(current).error();
      }
      const auto version = static_cast<int>(current->int64(0, 0));
      if (version > kSchemaVersion) {
        return fail(ErrorCode::kConfig, "database schema version " + std::to_string(version)
                                            + " is newer than this build supports ("
                                            + std::to_string(kSchemaVersion)
                                            + "); upgrade spawn-proxy");
      }
      if (version == kSchemaVersion) {
        return ok();
      }
      const int next = version + 1;
      for (const char* statement : kMigrations[static_cast<std::size_t>(version)]) {
        if (Result<Rows> migrated = db.exec(statement); !migrated) {
          return migrated.error().with_context("migrate to schema version " + std::to_string(next));
        }
      }
      if (Result<Rows> recorded =
              db.exec("INSERT INTO schema_version (version, applied_at) VALUES ("
                      + std::to_string(next) + ", UTC_TIMESTAMP(6))");
          !recorded) {
        return std::move(recorded).error();
      }
    }
  };
  Result<void> migrated = step();
  (void)db.exec("SELECT RELEASE_LOCK('spawn_statestore_migration')");
  return migrated;
}

Result<Snapshot> snapshot_from(const Rows& rows, std::size_t row) {
  Snapshot snapshot;
  snapshot.revision = rows.int64(row, 0);
  snapshot.status = status_from_text(rows.bytes(row, 1));
  snapshot.node = rows.bytes(row, 2);
  Result<std::map<std::string, std::string>> tags = tags_from_json(rows.bytes(row, 3));
  if (!tags) {
    return std::move(tags).error();
  }
  snapshot.tags = std::move(*tags);
  snapshot.has_state = rows.int64(row, 6) != 0;
  if (snapshot.has_state) {
    snapshot.type_url = rows.bytes(row, 4);
    snapshot.data = rows.is_null(row, 5) ? std::string() : rows.bytes(row, 5);
  }
  return snapshot;
}

/// The write connection; used only by the writer thread.
class Writer final : public ServerWriter<Connection> {
public:
  explicit Writer(std::unique_ptr<Connection> db)
      : ServerWriter(std::move(db), "START TRANSACTION", kMaxRetries) {}

private:
  bool roll_back_retryable() override {
    const unsigned error_number = db_->last_errno();
    (void)db_->exec("ROLLBACK");
    return is_retryable(error_number);
  }

  std::string where(const ActorKey& key) const {
    return " WHERE `system` = " + db_->quote(key.system) + " AND actor = " + db_->quote(key.name);
  }

  WriteOutcome conflict(const Save& save, std::int64_t stored) const {
    return fail(ErrorCode::kConflict, describe(save) + ": revision conflict (expected "
                                          + std::to_string(save.expected_revision) + ", stored "
                                          + std::to_string(stored) + ")");
  }

  Result<WriteOutcome> apply(const Save& save) override {
    const ActorKey& key = save.key;
    const Snapshot& snapshot = save.snapshot;
    const std::string type_url = db_->quote(snapshot.has_state ? snapshot.type_url : "");
    const std::string data = snapshot.has_state ? Connection::blob(snapshot.data) : "NULL";
    const std::string has_state = snapshot.has_state ? "1" : "0";
    if (save.expected_revision == 0) {
      // Inserted only if the actor has no row: an existing row is left as it is (0 rows
      // affected), which is a conflict.
      Result<Rows> inserted = db_->exec(
          "INSERT INTO snapshots (`system`, actor, status, node, revision, tags, data_type, data, "
          "has_state, inserted_at, updated_at) VALUES ("
          + db_->quote(key.system) + ", " + db_->quote(key.name) + ", "
          + db_->quote(status_text(snapshot.status)) + ", " + db_->quote(snapshot.node) + ", 1, "
          + db_->quote(save.tags_json) + ", " + type_url + ", " + data + ", " + has_state
          + ", UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE revision = revision");
      if (!inserted) {
        return std::move(inserted).error();
      }
      if (inserted->affected() == 1) {
        return WriteOutcome(1);
      }
      Result<Rows> stored = db_->exec("SELECT revision FROM snapshots" + where(key));
      if (!stored) {
        return std::move(stored).error();
      }
      return conflict(save, stored->count() == 0 ? 0 : stored->int64(0, 0));
    }
    // Lock the row, so no other process changes it between the compare and the set.
    Result<Rows> locked = db_->exec("SELECT revision FROM snapshots" + where(key) + " FOR UPDATE");
    if (!locked) {
      return std::move(locked).error();
    }
    const std::int64_t stored = locked->count() == 0 ? 0 : locked->int64(0, 0);
    if (stored != save.expected_revision) {
      return conflict(save, stored);
    }
    Result<Rows> archived = db_->exec(
        "INSERT INTO historical_snapshots (`system`, actor, revision, status, node, tags, "
        "data_type, data, has_state, inserted_at, updated_at, valid_from, valid_to) "
        "SELECT `system`, actor, revision, status, node, tags, data_type, data, has_state, "
        "inserted_at, updated_at, updated_at, UTC_TIMESTAMP(6) FROM snapshots"
        + where(key));
    if (!archived) {
      return std::move(archived).error();
    }
    Result<Rows> updated = db_->exec(
        "UPDATE snapshots SET status = " + db_->quote(status_text(snapshot.status))
        + ", node = " + db_->quote(snapshot.node) + ", revision = " + std::to_string(stored + 1)
        + ", tags = " + db_->quote(save.tags_json) + ", data_type = " + type_url + ", data = "
        + data + ", has_state = " + has_state + ", updated_at = UTC_TIMESTAMP(6)" + where(key));
    if (!updated) {
      return std::move(updated).error();
    }
    return WriteOutcome(stored + 1);
  }

  Result<WriteOutcome> apply(const PutScheduled& put) override {
    const ScheduledInvocation& invocation = put.invocation;
    Result<Rows> put_done = db_->exec(
        "INSERT INTO scheduled_invocations (id, due_ms, `system`, actor, request, inserted_at) "
        "VALUES ("
        + db_->quote(invocation.id) + ", " + std::to_string(invocation.due_ms) + ", "
        + db_->quote(invocation.system) + ", " + db_->quote(invocation.actor) + ", "
        + Connection::blob(invocation.request)
        + ", UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE due_ms = VALUES(due_ms), "
          "`system` = VALUES(`system`), actor = VALUES(actor), request = VALUES(request), "
          "inserted_at = VALUES(inserted_at)");
    if (!put_done) {
      return std::move(put_done).error();
    }
    return WriteOutcome(0);
  }

  Result<WriteOutcome> apply(const RemoveScheduled& remove) override {
    // A few hundred ids per statement keeps each one well below max_allowed_packet.
    constexpr std::size_t kIdsPerStatement = 500;
    for (std::size_t first = 0; first < remove.ids.size(); first += kIdsPerStatement) {
      std::string sql = "DELETE FROM scheduled_invocations WHERE id IN (";
      const std::size_t end = std::min(remove.ids.size(), first + kIdsPerStatement);
      for (std::size_t i = first; i < end; ++i) {
        sql += (i == first ? "" : ", ") + db_->quote(remove.ids[i]);
      }
      sql += ")";
      if (Result<Rows> removed = db_->exec(sql); !removed) {
        return std::move(removed).error();
      }
    }
    return WriteOutcome(0);
  }
};

/// One read connection; used only by its reader thread.
class Reader final : public RequestReader {
public:
  explicit Reader(std::unique_ptr<Connection> db) : db_(std::move(db)) {}

  void serve(ReadRequest& request) override {
    serve_reconnecting(*db_, request, [this](const auto& payload) { return read(payload); });
  }

private:
  Result<std::optional<Snapshot>> read(const Load& load) {
    const std::string where = " WHERE `system` = " + db_->quote(load.key.system)
                              + " AND actor = " + db_->quote(load.key.name);
    std::string sql;
    if (load.revision == kNewest) {
      sql = std::string("SELECT ") + kColumns + " FROM snapshots" + where;
    } else {
      // One statement, so both tables are read in one snapshot even while the writer moves this
      // revision from one to the other.
      const std::string revision = " AND revision = " + std::to_string(load.revision);
      sql = std::string("(SELECT ") + kColumns + " FROM snapshots" + where + revision
            + ") UNION ALL (SELECT " + kColumns + " FROM historical_snapshots" + where + revision
            + ") LIMIT 1";
    }
    Result<Rows> rows = db_->exec(sql);
    if (!rows) {
      return rows.error().with_context(actor_context("load", load.key));
    }
    if (rows->count() == 0) {
      return std::optional<Snapshot>();
    }
    Result<Snapshot> snapshot = snapshot_from(*rows, 0);
    if (!snapshot) {
      return snapshot.error().with_context(actor_context("load", load.key));
    }
    return std::optional<Snapshot>(std::move(*snapshot));
  }

  Result<std::vector<ScheduledInvocation>> read(const DueScheduled& due) {
    Result<Rows> rows = db_->exec(
        "SELECT id, due_ms, `system`, actor, request FROM scheduled_invocations WHERE due_ms <= "
        + std::to_string(due.until_ms) + " ORDER BY due_ms, id LIMIT " + std::to_string(due.limit));
    if (!rows) {
      return rows.error().with_context("load due scheduled invocations");
    }
    std::vector<ScheduledInvocation> invocations;
    invocations.reserve(rows->count());
    for (std::size_t row = 0; row < rows->count(); ++row) {
      invocations.push_back(ScheduledInvocation{
          .id = rows->bytes(row, 0),
          .due_ms = rows->int64(row, 1),
          .system = rows->bytes(row, 2),
          .actor = rows->bytes(row, 3),
          .request = rows->bytes(row, 4),
      });
    }
    return invocations;
  }

  Result<std::int64_t> read(const CountScheduled& /*count*/) {
    Result<Rows> rows = db_->exec("SELECT COUNT(*) FROM scheduled_invocations");
    if (!rows) {
      return rows.error().with_context("count scheduled invocations");
    }
    return rows->int64(0, 0);
  }

  std::unique_ptr<Connection> db_;
};

}  // namespace

Result<std::unique_ptr<QueuedStore>> open_store(Options options) {
  ConnectionSettings settings{
      .host = options.host,
      .port = options.port != 0 ? options.port : std::uint16_t{3306},
      .database = options.database,
      .user = options.user,
      .password = options.password,
      .ssl = options.ssl || options.ssl_verify,
      .ssl_verify = options.ssl_verify,
      .connect_timeout = options.connect_timeout,
  };
  const std::string context = "open mysql statestore";
  Result<std::unique_ptr<Connection>> db = Connection::open(settings);
  if (!db) {
    return db.error().with_context(context);
  }
  if (Result<void> migrated = migrate(**db); !migrated) {
    return migrated.error().with_context(context);
  }
  std::vector<std::unique_ptr<RequestReader>> readers;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.readers, 1); ++i) {
    Result<std::unique_ptr<Connection>> read_db = Connection::open(settings);
    if (!read_db) {
      return read_db.error().with_context(context);
    }
    readers.push_back(std::make_unique<Reader>(std::move(*read_db)));
  }
  Result<std::unique_ptr<QueuedStore>> queued =
      QueuedStore::start(QueueOptions{.node = std::move(options.node),
                                      .group_commit = options.group_commit,
                                      .max_batch = options.max_batch},
                         std::make_unique<Writer>(std::move(*db)), std::move(readers));
  if (!queued) {
    return queued.error().with_context(context);
  }
  return std::move(*queued);
}

}  // namespace spawn::statestore::mysql
