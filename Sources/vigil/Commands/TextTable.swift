/// Rows of text in aligned columns, each as wide as its widest cell: nothing is ever cut (an id
/// longer than the others widens its column instead). The last column is not padded.
enum TextTable {
    static func lines(_ rows: [[String]], indent: String = "", separator: String = " ") -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            indent + row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: separator)
        }
    }

    static func print(_ rows: [[String]], indent: String = "", separator: String = " ") {
        for line in lines(rows, indent: indent, separator: separator) { Swift.print(line) }
    }
}
