//! The PDF tax invoice of a medicine order, written with pdf-writer: A4 pages, the standard Helvetica
//! fonts (nothing embedded), uncompressed text so the document stays searchable and easy to inspect.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::{
    config::InvoiceSettings,
    db::{mail::InvoiceLine, orders::Order},
    domain::order::rupees,
};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 48.0;
/// Lines stop here and continue on a new page, leaving room for the footer.
const BOTTOM: f32 = 90.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Everything printed on the invoice besides the seller.
pub struct InvoiceData<'a> {
    pub order: &'a Order,
    pub lines: &'a [InvoiceLine],
    pub customer_email: Option<&'a str>,
}

/// Text as the bytes of WinAnsiEncoding: ASCII and Latin-1 letters as they are, anything else `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|ch| match u32::from(ch) {
            code @ (0x20..=0x7e | 0xa0..=0xff) => u8::try_from(code).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

/// Helvetica advance widths (per 1000 em) of the characters amounts are made of.
fn amount_width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|ch| match ch {
            '0'..='9' => 556,
            '.' | ',' | ' ' => 278,
            '-' => 333,
            '%' => 889,
            'R' => 722,
            's' => 500,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// Cuts a cell's text to `max` characters, marking the cut.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(3)).collect();
        cut.push_str("...");
        cut
    }
}

/// Pages being written; a new one starts when the current one is full.
struct Pages {
    done: Vec<Content>,
    current: Content,
    y: f32,
}

impl Pages {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            current: Content::new(),
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    fn text(&mut self, font: Name<'_>, size: f32, x: f32, y: f32, text: &str) {
        self.current
            .begin_text()
            .set_font(font, size)
            .next_line(x, y)
            .show(Str(&win_ansi(text)))
            .end_text();
    }

    /// Right-aligned at `right` (for amounts).
    fn amount(&mut self, font: Name<'_>, size: f32, right: f32, y: f32, text: &str) {
        let x = right - amount_width(text, size);
        self.text(font, size, x, y, text);
    }

    fn rule(&mut self, y: f32) {
        self.current
            .set_line_width(0.5)
            .move_to(MARGIN, y)
            .line_to(PAGE_WIDTH - MARGIN, y)
            .stroke();
    }

    fn new_page(&mut self) {
        let full = std::mem::replace(&mut self.current, Content::new());
        self.done.push(full);
        self.y = PAGE_HEIGHT - MARGIN;
    }

    /// Moves down by `step`, starting a new page first when the line would not fit.
    fn advance(&mut self, step: f32) -> f32 {
        if self.y - step < BOTTOM {
            self.new_page();
        }
        self.y -= step;
        self.y
    }

    fn finish(mut self) -> Vec<Content> {
        self.done.push(self.current);
        self.done
    }
}

/// Column positions of the item table.
const COL_NO: f32 = MARGIN;
const COL_ITEM: f32 = MARGIN + 22.0;
const COL_QTY_RIGHT: f32 = 330.0;
const COL_PRICE_RIGHT: f32 = 400.0;
const COL_GST_RIGHT: f32 = 440.0;
const COL_TAXABLE_RIGHT: f32 = PAGE_WIDTH - MARGIN;

/// Renders the invoice; the bytes are a complete PDF file.
pub fn render(seller: &InvoiceSettings, data: &InvoiceData<'_>) -> Vec<u8> {
    let order = data.order;
    let mut pages = Pages::new();

    let y = pages.advance(4.0);
    pages.text(BOLD, 18.0, MARGIN, y, "TAX INVOICE");
    pages.amount(REGULAR, 10.0, PAGE_WIDTH - MARGIN, y, "Original for recipient");
    let y = pages.advance(26.0);
    pages.text(BOLD, 12.0, MARGIN, y, &seller.seller_name);
    pages.text(
        REGULAR,
        10.0,
        330.0,
        y,
        &format!("Invoice no: INV-{}", order.order_number),
    );
    let y = pages.advance(14.0);
    pages.text(REGULAR, 10.0, MARGIN, y, &fit(&seller.seller_address, 55));
    pages.text(REGULAR, 10.0, 330.0, y, &format!("Order: {}", order.order_number));
    let y = pages.advance(14.0);
    pages.text(REGULAR, 10.0, MARGIN, y, &format!("GSTIN: {}", seller.gstin));
    pages.text(
        REGULAR,
        10.0,
        330.0,
        y,
        &format!("Order date: {}", order.placed_at.format("%d %b %Y")),
    );
    let y = pages.advance(14.0);
    pages.text(
        REGULAR,
        10.0,
        MARGIN,
        y,
        &format!("Drug licence: {}", seller.drug_licence),
    );
    let payment = match (order.payment_method.as_str(), order.payment_status.as_str()) {
        ("cod", _) => "Cash on delivery".to_owned(),
        (_, "paid" | "captured") => "Paid online (Razorpay)".to_owned(),
        (method, status) => format!("{method} ({status})"),
    };
    pages.text(REGULAR, 10.0, 330.0, y, &format!("Payment: {payment}"));

    let y = pages.advance(28.0);
    pages.text(BOLD, 11.0, MARGIN, y, "Bill to / Ship to");
    let mut customer = vec![
        order.ship_name.clone(),
        order.ship_address.clone(),
        format!("{} {}", order.ship_city, order.ship_pincode),
    ];
    if !order.ship_phone.is_empty() {
        customer.push(format!("Phone: {}", order.ship_phone));
    }
    if let Some(email) = data.customer_email {
        customer.push(format!("E-mail: {email}"));
    }
    for line in customer {
        let y = pages.advance(14.0);
        pages.text(REGULAR, 10.0, MARGIN, y, &fit(&line, 90));
    }

    let header = |pages: &mut Pages| {
        let y = pages.advance(26.0);
        pages.text(BOLD, 9.0, COL_NO, y, "#");
        pages.text(BOLD, 9.0, COL_ITEM, y, "Item");
        pages.amount(BOLD, 9.0, COL_QTY_RIGHT, y, "Qty");
        pages.amount(BOLD, 9.0, COL_PRICE_RIGHT, y, "Unit price");
        pages.amount(BOLD, 9.0, COL_GST_RIGHT, y, "GST %");
        pages.amount(BOLD, 9.0, COL_TAXABLE_RIGHT, y, "Amount (Rs.)");
        pages.rule(y - 5.0);
        pages.y -= 4.0;
    };
    header(&mut pages);
    for (n, line) in data.lines.iter().enumerate() {
        if pages.y - 15.0 < BOTTOM {
            pages.new_page();
            header(&mut pages);
        }
        let y = pages.advance(15.0);
        pages.text(REGULAR, 9.0, COL_NO, y, &(n + 1).to_string());
        pages.text(REGULAR, 9.0, COL_ITEM, y, &fit(&line.medicine_name, 42));
        pages.amount(REGULAR, 9.0, COL_QTY_RIGHT, y, &line.quantity.to_string());
        pages.amount(REGULAR, 9.0, COL_PRICE_RIGHT, y, &rupees(line.unit_price_paise));
        pages.amount(REGULAR, 9.0, COL_GST_RIGHT, y, &format!("{}%", line.gst_rate()));
        pages.amount(REGULAR, 9.0, COL_TAXABLE_RIGHT, y, &rupees(line.line_total_paise));
    }
    let y = pages.advance(8.0);
    pages.rule(y);

    let mut totals = vec![("Subtotal (before GST)", rupees(order.subtotal_paise))];
    if order.discount_paise > 0 {
        totals.push(("Discount", format!("-{}", rupees(order.discount_paise))));
    }
    totals.push(("GST", rupees(order.tax_paise)));
    totals.push(("Delivery", rupees(order.delivery_paise)));
    for (label, amount) in totals {
        let y = pages.advance(15.0);
        pages.text(REGULAR, 10.0, 330.0, y, label);
        pages.amount(REGULAR, 10.0, COL_TAXABLE_RIGHT, y, &amount);
    }
    let y = pages.advance(20.0);
    pages.text(BOLD, 12.0, 330.0, y, "Total");
    let total = format!("Rs. {}", rupees(order.total_paise));
    pages.amount(BOLD, 12.0, COL_TAXABLE_RIGHT, y, &total);

    let y = pages.advance(30.0);
    pages.text(
        REGULAR,
        8.0,
        MARGIN,
        y,
        "Unit prices exclude GST; GST is charged on the value after discount. Amounts in Indian rupees.",
    );
    let y = pages.advance(12.0);
    pages.text(
        REGULAR,
        8.0,
        MARGIN,
        y,
        "This is a computer-generated invoice and needs no signature.",
    );

    assemble(order, pages.finish())
}

/// Writes the catalog, page tree, fonts, document info and one content stream per page.
fn assemble(order: &Order, contents: Vec<Content>) -> Vec<u8> {
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_count = i32::try_from(contents.len()).unwrap_or(i32::MAX);
    let page_ref = |n: i32| Ref::new(first_page + 2 * n);
    let content_ref = |n: i32| Ref::new(first_page + 2 * n + 1);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..page_count).map(page_ref))
        .count(page_count);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(&format!("Invoice INV-{}", order.order_number)))
        .producer(TextStr("ONE MEDI"));
    for (n, content) in (0..page_count).zip(contents) {
        let mut page = pdf.page(page_ref(n));
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(content_ref(n));
        page.resources().fonts().pair(REGULAR, regular).pair(BOLD, bold);
        page.finish();
        pdf.stream(content_ref(n), &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(win_ansi("Crocin 500 é ₹"), b"Crocin 500 \xe9 ?".to_vec());
    }

    #[test]
    fn long_cells_are_cut_with_a_mark() {
        assert_eq!(fit("Paracetamol", 20), "Paracetamol");
        assert_eq!(fit("Paracetamol 650 mg tablets", 10), "Paracet...");
    }
}
