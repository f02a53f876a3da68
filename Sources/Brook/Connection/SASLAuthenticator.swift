import BrookProtocol
import Crypto
import Foundation
import NIOCore

/// SASL PLAIN and SCRAM-SHA-256/512 over SaslHandshake + SaslAuthenticate (KIP-152).
struct SASLAuthenticator {
    let security: SecurityConfiguration

    func authenticate(_ conn: BrokerConnection) async throws {
        guard let user = security.saslUsername, let password = security.saslPassword else {
            throw KafkaClientError.invalidConfiguration("SASL needs --sasl-username and --sasl-password")
        }
        var hs = SaslHandshakeRequest()
        hs.mechanism = security.saslMechanism.rawValue
        let hsResp = try await conn.send(hs, version: min(try conn.version(for: .saslHandshake), 1))
        if hsResp.errorCode != 0 {
            throw KafkaClientError.authenticationFailed("broker does not enable \(hs.mechanism) (it offers \(hsResp.mechanisms.joined(separator: ", ")))")
        }
        switch security.saslMechanism {
        case .plain:
            var b = ByteBuffer()
            b.writeBytes([0] + Array(user.utf8) + [0] + Array(password.utf8))
            _ = try await round(conn, b)
        case .scramSHA256:
            try await scram(conn, user: user, password: password, hash: SHA256.self)
        case .scramSHA512:
            try await scram(conn, user: user, password: password, hash: SHA512.self)
        }
    }

    private func round(_ conn: BrokerConnection, _ bytes: ByteBuffer) async throws -> ByteBuffer {
        var req = SaslAuthenticateRequest()
        req.authBytes = bytes
        let resp = try await conn.send(req)
        if resp.errorCode != 0 {
            throw KafkaClientError.authenticationFailed(resp.errorMessage ?? ErrorCode(rawValue: resp.errorCode)?.name ?? "\(resp.errorCode)")
        }
        return resp.authBytes
    }

    private func scram<H: HashFunction>(_ conn: BrokerConnection, user: String, password: String, hash: H.Type) async throws {
        let nonce = Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let escapedUser = user.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
        let clientFirstBare = "n=\(escapedUser),r=\(nonce)"
        let serverFirst = String(buffer: try await round(conn, ByteBuffer(string: "n,," + clientFirstBare)))
        let attrs = Self.attributes(serverFirst)
        guard let serverNonce = attrs["r"], serverNonce.hasPrefix(nonce), let saltB64 = attrs["s"], let salt = Data(base64Encoded: saltB64),
              let iterations = attrs["i"].flatMap(Int.init), iterations > 0 else {
            throw KafkaClientError.authenticationFailed("malformed SCRAM server-first message")
        }
        let salted = Self.hi(password: Data(password.utf8), salt: salt, iterations: iterations, hash: H.self)
        let clientKey = Data(HMAC<H>.authenticationCode(for: Data("Client Key".utf8), using: SymmetricKey(data: salted)))
        let storedKey = Data(H.hash(data: clientKey))
        let withoutProof = "c=biws,r=\(serverNonce)"
        let authMessage = "\(clientFirstBare),\(serverFirst),\(withoutProof)"
        let signature = Data(HMAC<H>.authenticationCode(for: Data(authMessage.utf8), using: SymmetricKey(data: storedKey)))
        let proof = Data(zip(clientKey, signature).map { $0 ^ $1 })
        let serverFinal = String(buffer: try await round(conn, ByteBuffer(string: "\(withoutProof),p=\(proof.base64EncodedString())")))
        let serverKey = Data(HMAC<H>.authenticationCode(for: Data("Server Key".utf8), using: SymmetricKey(data: salted)))
        let expected = Data(HMAC<H>.authenticationCode(for: Data(authMessage.utf8), using: SymmetricKey(data: serverKey)))
        guard Self.attributes(serverFinal)["v"] == expected.base64EncodedString() else {
            throw KafkaClientError.authenticationFailed("SCRAM server signature did not verify")
        }
    }

    static func attributes(_ s: String) -> [String: String] {
        var out: [String: String] = [:]
        for part in s.split(separator: ",") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            out[String(part[..<eq])] = String(part[part.index(after: eq)...])
        }
        return out
    }

    /// RFC 5802 Hi(): PBKDF2 with HMAC-H, one block.
    static func hi<H: HashFunction>(password: Data, salt: Data, iterations: Int, hash: H.Type) -> Data {
        let key = SymmetricKey(data: password)
        var u = Data(HMAC<H>.authenticationCode(for: salt + Data([0, 0, 0, 1]), using: key))
        var result = u
        for _ in 1..<iterations {
            u = Data(HMAC<H>.authenticationCode(for: u, using: key))
            for i in result.indices { result[i] ^= u[i] }
        }
        return result
    }
}
