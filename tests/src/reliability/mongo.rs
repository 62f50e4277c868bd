//! A MongoDB-protocol server for the several-daemons scenario: isp-testsupport's
//! [`start`] (`MONGODB_URL`, else nx-27017 in a venv under the given directory,
//! the same venv the Mongo adapter's tests use), stopped and its data removed when
//! the returned handle drops. [`skip_or_fail`] fails the scenario when there is no
//! server, or skips it visibly when `ISP_TEST_SKIP` names `mongo`.

pub use isp_testsupport::mongo::{skip_or_fail, start, MongoServer, NX_VERSION};
