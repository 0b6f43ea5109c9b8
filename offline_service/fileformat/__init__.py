"""The signed file format shared by the service and the client SDK: JWS, request and response
messages, and the keyring of product keys. Imports nothing from the server side."""
