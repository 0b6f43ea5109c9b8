-- Version 3: the portal's recent activity reads the audit log by license.
CREATE INDEX audit_license ON audit_log(license_id, id);
