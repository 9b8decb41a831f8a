#include "statestore/postgres/postgres_store.hpp"

#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "statestore/postgres/pg_connection.hpp"
#include "statestore/queued_store.hpp"
#include "statestore/server_writer.hpp"
#include "statestore/snapshot_codec.hpp"
#include "statestore/store_requests.hpp"

namespace spawn::statestore::postgres {

namespace {

// Migration i (0-based) takes the schema from version i to version i + 1. Never edit a released
// entry: databases in the field have run it; append a new one instead. Every statement is
// idempotent (IF NOT EXISTS), so a migration that two CockroachDB nodes race on, which has no
// advisory lock, is safe to retry.
std::string migration(int to_version, Dialect dialect) {
  // Scheduled ids are ordered bytewise (Store::due_scheduled). PostgreSQL's default collation
  // follows the locale, so the column says "C"; CockroachDB sorts strings bytewise already and
  // has no "C" collation.
  const std::string bytewise = dialect == Dialect::kPostgres ? " COLLATE \"C\"" : "";
  switch (to_version) {
    case 1:
      // `snapshots` holds each actor's current revision, `historical_snapshots` every revision
      // it replaced (PROTOCOL.md §6); `scheduled_invocations` each delayed invocation (§5.6).
      // `data` and `request` are the (encrypted) blobs; tags are a JSON object in clear.
      return R"sql(
        CREATE TABLE IF NOT EXISTS snapshots (
          system      TEXT        NOT NULL,
          actor       TEXT        NOT NULL,
          status      TEXT        NOT NULL,
          node        TEXT        NOT NULL,
          revision    BIGINT      NOT NULL,
          tags        TEXT        NOT NULL,
          data_type   TEXT        NOT NULL,
          data        BYTEA,
          has_state   BOOLEAN     NOT NULL,
          inserted_at TIMESTAMPTZ NOT NULL,
          updated_at  TIMESTAMPTZ NOT NULL,
          PRIMARY KEY (system, actor)
        );
        CREATE TABLE IF NOT EXISTS historical_snapshots (
          system      TEXT        NOT NULL,
          actor       TEXT        NOT NULL,
          revision    BIGINT      NOT NULL,
          status      TEXT        NOT NULL,
          node        TEXT        NOT NULL,
          tags        TEXT        NOT NULL,
          data_type   TEXT        NOT NULL,
          data        BYTEA,
          has_state   BOOLEAN     NOT NULL,
          inserted_at TIMESTAMPTZ NOT NULL,
          updated_at  TIMESTAMPTZ NOT NULL,
          valid_from  TIMESTAMPTZ NOT NULL,
          valid_to    TIMESTAMPTZ NOT NULL,
          PRIMARY KEY (system, actor, revision)
        );
        CREATE TABLE IF NOT EXISTS scheduled_invocations (
          id          TEXT)sql"
             + bytewise + R"sql( NOT NULL PRIMARY KEY,
          due_ms      BIGINT      NOT NULL,
          system      TEXT        NOT NULL,
          actor       TEXT        NOT NULL,
          request     BYTEA       NOT NULL,
          inserted_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX IF NOT EXISTS scheduled_invocations_due
          ON scheduled_invocations (due_ms, id);
      )sql";
    default:
      return "";
  }
}

// Serializes migrations of processes starting at once (PostgreSQL only): an arbitrary constant,
// "spawn" in ASCII.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(495873995630)";

// The first revision: inserted only if the actor has no row, so of two first saves one wins.
constexpr const char* kInsertFirst = R"sql(
  INSERT INTO snapshots (system, actor, status, node, revision, tags, data_type, data, has_state,
                         inserted_at, updated_at)
  VALUES ($1::text, $2::text, $3::text, $4::text, 1, $5::text, $6::text, $7::bytea, $8::boolean,
          now(), now())
  ON CONFLICT (system, actor) DO NOTHING
  RETURNING revision
)sql";

// Compare-and-set of a later revision in one statement: the row is locked only if it still holds
// the expected revision (under READ COMMITTED, FOR UPDATE re-checks the condition on the newest
// version after waiting for a concurrent writer), archived to history and replaced. No row
// returned means the stored revision was another one: a conflict, and nothing changed.
constexpr const char* kUpdateCas = R"sql(
  WITH old AS (
    SELECT system, actor, revision, status, node, tags, data_type, data, has_state,
           inserted_at, updated_at
    FROM snapshots WHERE system = $1::text AND actor = $2::text AND revision = $3::bigint
    FOR UPDATE
  ), archived AS (
    INSERT INTO historical_snapshots (system, actor, revision, status, node, tags, data_type,
                                      data, has_state, inserted_at, updated_at, valid_from,
                                      valid_to)
    SELECT system, actor, revision, status, node, tags, data_type, data, has_state,
           inserted_at, updated_at, updated_at, now()
    FROM old
  )
  UPDATE snapshots AS s
  SET status = $4::text, node = $5::text, revision = old.revision + 1, tags = $6::text,
      data_type = $7::text, data = $8::bytea, has_state = $9::boolean, updated_at = now()
  FROM old
  WHERE s.system = old.system AND s.actor = old.actor
  RETURNING s.revision
)sql";

constexpr const char* kSelectRevision =
    "SELECT revision FROM snapshots WHERE system = $1::text AND actor = $2::text";

constexpr const char* kLoad = R"sql(
  SELECT revision, status, node, tags, data_type, data, has_state
  FROM snapshots WHERE system = $1::text AND actor = $2::text
)sql";

// One statement, so the current and historical tables are read in one snapshot even while the
// writer moves this revision from one to the other.
constexpr const char* kLoadRevision = R"sql(
  (SELECT revision, status, node, tags, data_type, data, has_state
   FROM snapshots WHERE system = $1::text AND actor = $2::text AND revision = $3::bigint)
  UNION ALL
  (SELECT revision, status, node, tags, data_type, data, has_state
   FROM historical_snapshots
   WHERE system = $1::text AND actor = $2::text AND revision = $3::bigint)
  LIMIT 1
)sql";

// Same id again replaces the whole row; inserted_at records when this version was written.
constexpr const char* kPutScheduled = R"sql(
  INSERT INTO scheduled_invocations (id, due_ms, system, actor, request, inserted_at)
  VALUES ($1::text, $2::bigint, $3::text, $4::text, $5::bytea, now())
  ON CONFLICT (id) DO UPDATE SET
    due_ms = excluded.due_ms, system = excluded.system, actor = excluded.actor,
    request = excluded.request, inserted_at = excluded.inserted_at
)sql";

constexpr const char* kRemoveScheduled = "DELETE FROM scheduled_invocations WHERE id = $1::text";

// A range scan of the (due_ms, id) index, in the order returned.
constexpr const char* kDueScheduled = R"sql(
  SELECT id, due_ms, system, actor, request FROM scheduled_invocations
  WHERE due_ms <= $1::bigint ORDER BY due_ms, id LIMIT $2::bigint
)sql";

constexpr const char* kCountScheduled = "SELECT count(*) FROM scheduled_invocations";

// How often a transaction that lost a serialization race (40001, CockroachDB's "restart
// transaction", or a deadlock 40P01 with another process) is run again before giving up.
constexpr int kMaxSerializationRetries = 8;

bool is_serialization_failure(const std::string& sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01";
}

// Runs every pending migration, each in its own transaction (CockroachDB does not allow a schema
// change after a write in the same transaction).
Result<void> migrate(Connection& db, Dialect dialect) {
  int retries = 0;
  for (;;) {
    auto step = [&]() -> Result<bool> {
      if (Result<Rows> begun = db.exec("BEGIN"); !begun) {
        return std::move(begun).error();
      }
      if (dialect == Dialect::kPostgres) {
        if (Result<Rows> locked = db.exec(kMigrationLock); !locked) {
          return std::move(locked).error();
        }
      }
      if (Result<Rows> created =
              db.exec("CREATE TABLE IF NOT EXISTS schema_version ("
                      "version INTEGER NOT NULL PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)");
          !created) {
        return std::move(created).error();
      }
      Result<Rows> current =
          db.exec("SELECT coalesce(max(version), 0)::bigint FROM schema_version");
      if (!current) {
        return std::move(current).error();
      }
      // exec() reads text results.
      const int version = std::atoi(std::string(current->bytes(0, 0)).c_str());
      if (version > kSchemaVersion) {
        return fail(ErrorCode::kConfig, "database schema version " + std::to_string(version)
                                            + " is newer than this build supports ("
                                            + std::to_string(kSchemaVersion)
                                            + "); upgrade spawn-proxy");
      }
      if (version == kSchemaVersion) {
        if (Result<Rows> committed = db.exec("COMMIT"); !committed) {
          return std::move(committed).error();
        }
        return true;
      }
      const int next = version + 1;
      if (Result<Rows> migrated = db.exec(migration(next, dialect)); !migrated) {
        return migrated.error().with_context("migrate to schema version " + std::to_string(next));
      }
      if (Result<Rows> recorded =
              db.exec("INSERT INTO schema_version (version, applied_at) VALUES ("
                      + std::to_string(next) + ", now())");
          !recorded) {
        return std::move(recorded).error();
      }
      if (Result<Rows> committed = db.exec("COMMIT"); !committed) {
        return std::move(committed).error();
      }
      return false;
    };
    Result<bool> done = step();
    if (done && *done) {
      return ok();
    }
    if (!done) {
      if (!db.broken()) {
        (void)db.exec("ROLLBACK");
      }
      // A node racing us (CockroachDB) or a duplicate version row: look again.
      const bool raced =
          is_serialization_failure(db.last_sqlstate()) || db.last_sqlstate() == "23505";
      if (!raced || ++retries > kMaxSerializationRetries) {
        return std::move(done).error();
      }
      back_off(retries);
    }
  }
}

Result<Snapshot> snapshot_from(const Rows& rows, int row) {
  Snapshot snapshot;
  snapshot.revision = rows.int64(row, 0);
  snapshot.status = status_from_text(rows.bytes(row, 1));
  snapshot.node = rows.bytes(row, 2);
  Result<std::map<std::string, std::string>> tags = tags_from_json(rows.bytes(row, 3));
  if (!tags) {
    return std::move(tags).error();
  }
  snapshot.tags = std::move(*tags);
  snapshot.has_state = rows.boolean(row, 6);
  if (snapshot.has_state) {
    snapshot.type_url = rows.bytes(row, 4);
    snapshot.data = rows.is_null(row, 5) ? std::string() : std::string(rows.bytes(row, 5));
  }
  return snapshot;
}

/// The write connection; used only by the writer thread.
class Writer final : public ServerWriter<Connection> {
public:
  static Result<std::unique_ptr<Writer>> create(std::unique_ptr<Connection> db) {
    for (const auto& [name, sql] :
         {std::pair{"insert_first", kInsertFirst}, std::pair{"update_cas", kUpdateCas},
          std::pair{"select_revision", kSelectRevision}, std::pair{"put_scheduled", kPutScheduled},
          std::pair{"remove_scheduled", kRemoveScheduled}}) {
      if (Result<void> prepared = db->prepare(name, sql); !prepared) {
        return std::move(prepared).error();
      }
    }
    return std::unique_ptr<Writer>(new Writer(std::move(db)));
  }

private:
  explicit Writer(std::unique_ptr<Connection> db)
      : ServerWriter(std::move(db), "BEGIN", kMaxSerializationRetries) {}

  bool roll_back_retryable() override {
    (void)db_->exec("ROLLBACK");
    return is_serialization_failure(db_->last_sqlstate());
  }

  Result<WriteOutcome> apply(const Save& save) override {
    const ActorKey& key = save.key;
    const Snapshot& snapshot = save.snapshot;
    Params params;
    params.text(key.system).text(key.name);
    const bool first = save.expected_revision == 0;
    if (!first) {
      params.int64(save.expected_revision);
    }
    params.text(status_text(snapshot.status)).text(snapshot.node).text(save.tags_json);
    if (snapshot.has_state) {
      params.text(snapshot.type_url).bytes(snapshot.data);
    } else {
      params.text("").null();
    }
    params.boolean(snapshot.has_state);
    Result<Rows> written = db_->run(first ? "insert_first" : "update_cas", params);
    if (!written) {
      return std::move(written).error();
    }
    if (written->count() == 1) {
      return WriteOutcome(written->int64(0, 0));
    }
    // No row written: some other revision is stored. Read which, for the message.
    Result<Rows> stored = db_->run("select_revision", Params().text(key.system).text(key.name));
    if (!stored) {
      return std::move(stored).error();
    }
    const std::int64_t revision = stored->count() == 0 ? 0 : stored->int64(0, 0);
    return WriteOutcome(fail(ErrorCode::kConflict, describe(save) + ": revision conflict (expected "
                                                       + std::to_string(save.expected_revision)
                                                       + ", stored " + std::to_string(revision)
                                                       + ")"));
  }

  Result<WriteOutcome> apply(const PutScheduled& put) override {
    const ScheduledInvocation& invocation = put.invocation;
    Params params;
    params.text(invocation.id)
        .int64(invocation.due_ms)
        .text(invocation.system)
        .text(invocation.actor)
        .bytes(invocation.request);
    if (Result<Rows> put_done = db_->run("put_scheduled", params); !put_done) {
      return std::move(put_done).error();
    }
    return WriteOutcome(0);
  }

  Result<WriteOutcome> apply(const RemoveScheduled& remove) override {
    for (const std::string& id : remove.ids) {
      if (Result<Rows> removed = db_->run("remove_scheduled", Params().text(id)); !removed) {
        return std::move(removed).error();
      }
    }
    return WriteOutcome(0);
  }
};

/// One read connection; used only by its reader thread.
class Reader final : public RequestReader {
public:
  static Result<std::unique_ptr<Reader>> create(std::unique_ptr<Connection> db) {
    for (const auto& [name, sql] :
         {std::pair{"load", kLoad}, std::pair{"load_revision", kLoadRevision},
          std::pair{"due_scheduled", kDueScheduled},
          std::pair{"count_scheduled", kCountScheduled}}) {
      if (Result<void> prepared = db->prepare(name, sql); !prepared) {
        return std::move(prepared).error();
      }
    }
    return std::unique_ptr<Reader>(new Reader(std::move(db)));
  }

  void serve(ReadRequest& request) override {
    serve_reconnecting(*db_, request, [this](const auto& payload) { return read(payload); });
  }

private:
  explicit Reader(std::unique_ptr<Connection> db) : db_(std::move(db)) {}

  Result<std::optional<Snapshot>> read(const Load& load) {
    Params params;
    params.text(load.key.system).text(load.key.name);
    if (load.revision != kNewest) {
      params.int64(load.revision);
    }
    Result<Rows> rows = db_->run(load.revision == kNewest ? "load" : "load_revision", params);
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
    Result<Rows> rows = db_->run("due_scheduled", Params().int64(due.until_ms).int64(due.limit));
    if (!rows) {
      return rows.error().with_context("load due scheduled invocations");
    }
    std::vector<ScheduledInvocation> invocations;
    invocations.reserve(static_cast<std::size_t>(rows->count()));
    for (int row = 0; row < rows->count(); ++row) {
      invocations.push_back(ScheduledInvocation{
          .id = std::string(rows->bytes(row, 0)),
          .due_ms = rows->int64(row, 1),
          .system = std::string(rows->bytes(row, 2)),
          .actor = std::string(rows->bytes(row, 3)),
          .request = std::string(rows->bytes(row, 4)),
      });
    }
    return invocations;
  }

  Result<std::int64_t> read(const CountScheduled& /*count*/) {
    Result<Rows> rows = db_->run("count_scheduled", Params());
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
      .port = options.port != 0 ? options.port
                                : (options.dialect == Dialect::kCockroach ? std::uint16_t{26257}
                                                                          : std::uint16_t{5432}),
      .database = options.database,
      .user = options.user,
      .password = options.password,
      .ssl = options.ssl || options.ssl_verify,
      .ssl_verify = options.ssl_verify,
      .connect_timeout = options.connect_timeout,
  };
  const std::string kind = options.dialect == Dialect::kCockroach ? "cockroachdb" : "postgres";
  const std::string context = "open " + kind + " statestore";
  Result<std::unique_ptr<Connection>> db = Connection::open(settings);
  if (!db) {
    return db.error().with_context(context);
  }
  if (Result<void> migrated = migrate(**db, options.dialect); !migrated) {
    return migrated.error().with_context(context);
  }
  Result<std::unique_ptr<Writer>> writer = Writer::create(std::move(*db));
  if (!writer) {
    return writer.error().with_context(context);
  }
  std::vector<std::unique_ptr<RequestReader>> readers;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.readers, 1); ++i) {
    Result<std::unique_ptr<Connection>> read_db = Connection::open(settings);
    if (!read_db) {
      return read_db.error().with_context(context);
    }
    Result<std::unique_ptr<Reader>> reader = Reader::create(std::move(*read_db));
    if (!reader) {
      return reader.error().with_context(context);
    }
    readers.push_back(std::move(*reader));
  }
  Result<std::unique_ptr<QueuedStore>> queued =
      QueuedStore::start(QueueOptions{.node = std::move(options.node),
                                      .group_commit = options.group_commit,
                                      .max_batch = options.max_batch},
                         std::move(*writer), std::move(readers));
  if (!queued) {
    return queued.error().with_context(context);
  }
  return std::move(*queued);
}

}  // namespace spawn::statestore::postgres
