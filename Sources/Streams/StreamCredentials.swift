/// A camera's stream URL often carries its password (`rtsp://admin:secret@10.0.0.7/h264`, or
/// `?password=…` on some vendors' HTTP streams). The URL is needed whole only where the relay
/// opens the stream; everywhere else (errors, feed states on the bus, log lines, exports) it is
/// shown through `redacted`, which keeps what an operator needs to recognise the camera (scheme,
/// host, port, path) and replaces the user information and credential-like query values.
public enum StreamCredentials {
    /// The placeholder that stands for a removed secret.
    public static let mask = "***"

    /// Query parameters whose values are secrets in the cameras' URLs seen in the field.
    static let secretParameters: Set<String> = [
        "password", "passwd", "pass", "pwd", "user", "username", "usr", "login", "token", "access_token",
        "auth", "key", "apikey", "api_key", "secret", "signature", "sig",
    ]

    /// `url` without its user information and credential query values.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        var authority = afterScheme[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            authority = Substring(mask) + authority[at...]
        }
        var rest = String(afterScheme[authorityEnd...])
        if let question = rest.firstIndex(of: "?") {
            let fragmentStart = rest[question...].firstIndex(of: "#") ?? rest.endIndex
            let query = rest[rest.index(after: question)..<fragmentStart]
            let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
                guard let equals = parameter.firstIndex(of: "="),
                      secretParameters.contains(parameter[..<equals].lowercased())
                else { return String(parameter) }
                return parameter[...equals] + mask
            }
            rest = rest[...question] + parameters.joined(separator: "&") + rest[fragmentStart...]
        }
        return url[..<schemeEnd.upperBound] + authority + rest
    }
}
