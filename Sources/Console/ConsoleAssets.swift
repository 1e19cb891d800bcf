/// The console's page, script and style, built into the binary (`Assets/`, embedded by the
/// package), so that a server serves them wherever it runs and fetches nothing.
enum ConsoleAssets {
    static let page = String(decoding: PackageResources.index_html, as: UTF8.self)
    static let script = String(decoding: PackageResources.console_js, as: UTF8.self)
    static let style = String(decoding: PackageResources.console_css, as: UTF8.self)
}
