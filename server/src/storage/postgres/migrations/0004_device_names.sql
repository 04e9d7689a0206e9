-- The name a device gave itself when it enrolled (`fieldsync enroll --device-name`), shown in
-- `enumerator list` and in the device column of exports.
ALTER TABLE principals ADD COLUMN device_name TEXT;
