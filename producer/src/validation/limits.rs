//! The limits of a receipt, which the rules enforce and the OpenAPI document states (`document.rs`).

use rust_decimal::Decimal;

pub(crate) const MAX_ITEMS: usize = 1000;
pub(crate) const TRANSACTION_ID_MAX: usize = 128;
pub(crate) const PLACE_ID_MAX: usize = 64;
pub(crate) const PLACE_NAME_MAX: usize = 200;
pub(crate) const MERCHANT_ID_MAX: usize = 64;
pub(crate) const PRODUCT_ID_MAX: usize = 128;
pub(crate) const CATEGORY_MAX: usize = 64;
pub(crate) const PAYMENT_METHOD_MAX: usize = 32;
/// Decimal places of money and of quantities.
pub(crate) const MONEY_SCALE: u32 = 2;
pub(crate) const QUANTITY_SCALE: u32 = 3;
/// Upper bounds that keep every product and sum far inside rust_decimal's range.
pub(crate) const MAX_MONEY: Decimal = Decimal::from_parts(2764472319, 232830, 0, false, 2); // 9,999,999,999,999.99
pub(crate) const MAX_QUANTITY: Decimal = Decimal::from_parts(3_567_587_327, 232, 0, false, 3); // 999,999,999.999
