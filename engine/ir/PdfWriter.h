#pragma once

#include <string>
#include <vector>

namespace sage {

// A minimal PDF 1.4 writer: A4 pages with text in the standard Helvetica fonts (WinAnsi encoding; characters
// outside Latin-1 print as '?'), filled rectangles and lines. Coordinates are points from the page's top-left
// corner. No compression and no third-party library, so the output is easy to check.
class PdfWriter
{
public:
    static constexpr double kWidth = 595.0, kHeight = 842.0;

    PdfWriter();
    void newPage();
    int pageCount() const { return int(m_pages.size()); }

    void text(double x, double y, double size, const std::string& utf8, bool bold = false);
    void rect(double x, double y, double w, double h, double r, double g, double b);
    void line(double x1, double y1, double x2, double y2, double width, double r, double g, double b);
    // Approximate width of text in Helvetica at `size` (for wrapping).
    static double textWidth(const std::string& utf8, double size);
    // Latin-1 bytes of a UTF-8 string ('?' for anything else).
    static std::string toLatin1(const std::string& utf8);

    // The whole file.
    std::string finish() const;

private:
    std::vector<std::string> m_pages; // content streams
};

} // namespace sage
