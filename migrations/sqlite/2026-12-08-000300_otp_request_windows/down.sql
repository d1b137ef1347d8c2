DROP TABLE otp_request_windows;
