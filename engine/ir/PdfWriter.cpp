#include "engine/ir/PdfWriter.h"

#include <cstdio>

namespace sage {

namespace {

std::string fmt(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

} // namespace

PdfWriter::PdfWriter()
{
    newPage();
}

void PdfWriter::newPage()
{
    m_pages.emplace_back();
}

std::string PdfWriter::toLatin1(const std::string& s)
{
    std::string out;
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = b[i];
        if (c < 0x80) {
            out += char(c);
            ++i;
        } else if ((c >> 5) == 0x6 && i + 1 < s.size() && (b[i + 1] & 0xC0) == 0x80) {
            const unsigned cp = ((c & 0x1Fu) << 6) | (b[i + 1] & 0x3Fu);
            out += cp >= 0xA0 && cp <= 0xFF ? char(cp) : '?';
            i += 2;
        } else {
            size_t len = (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
            out += '?';
            i += len;
        }
    }
    return out;
}

double PdfWriter::textWidth(const std::string& utf8, double size)
{
    // Helvetica averages about half an em per character in running text; wider for capitals and digits.
    double w = 0;
    for (char c : toLatin1(utf8)) {
        if (c == ' ' || c == 'i' || c == 'l' || c == 'j' || c == 't' || c == 'f' || c == '.' || c == ',' || c == '\'')
            w += 0.28;
        else if ((c >= 'A' && c <= 'Z') || c == 'm' || c == 'w')
            w += 0.72;
        else
            w += 0.56;
    }
    return w * size;
}

void PdfWriter::text(double x, double y, double size, const std::string& utf8, bool bold)
{
    std::string esc;
    for (char c : toLatin1(utf8)) {
        if (c == '(' || c == ')' || c == '\\') esc += '\\';
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        esc += c;
    }
    m_pages.back() += "BT /" + std::string(bold ? "F2" : "F1") + " " + fmt(size) + " Tf " + fmt(x) + " " +
                      fmt(kHeight - y) + " Td (" + esc + ") Tj ET\n";
}

void PdfWriter::rect(double x, double y, double w, double h, double r, double g, double b)
{
    m_pages.back() += fmt(r) + " " + fmt(g) + " " + fmt(b) + " rg " + fmt(x) + " " + fmt(kHeight - y - h) + " " +
                      fmt(w) + " " + fmt(h) + " re f\n";
}

void PdfWriter::line(double x1, double y1, double x2, double y2, double width, double r, double g, double b)
{
    m_pages.back() += fmt(r) + " " + fmt(g) + " " + fmt(b) + " RG " + fmt(width) + " w " + fmt(x1) + " " +
                      fmt(kHeight - y1) + " m " + fmt(x2) + " " + fmt(kHeight - y2) + " l S\n";
}

std::string PdfWriter::finish() const
{
    // Objects: 1 catalog, 2 page tree, 3 and 4 fonts, then a page and its content stream per page.
    std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
    std::vector<size_t> offsets;
    auto object = [&](const std::string& body) {
        offsets.push_back(out.size());
        out += std::to_string(offsets.size()) + " 0 obj\n" + body + "\nendobj\n";
    };
    const size_t n = m_pages.size();
    object("<< /Type /Catalog /Pages 2 0 R >>");
    std::string kids;
    for (size_t i = 0; i < n; ++i) kids += std::to_string(5 + 2 * i) + " 0 R ";
    object("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
    object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>");
    for (size_t i = 0; i < n; ++i) {
        object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + fmt(kWidth) + " " + fmt(kHeight) +
               "] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents " + std::to_string(6 + 2 * i) + " 0 R >>");
        object("<< /Length " + std::to_string(m_pages[i].size()) + " >>\nstream\n" + m_pages[i] + "endstream");
    }
    const size_t xref = out.size();
    out += "xref\n0 " + std::to_string(offsets.size() + 1) + "\n0000000000 65535 f \n";
    for (size_t o : offsets) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%010zu 00000 n \n", o);
        out += buf;
    }
    out += "trailer\n<< /Size " + std::to_string(offsets.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return out;
}

} // namespace sage
