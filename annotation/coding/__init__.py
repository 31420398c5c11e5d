"""Human coding: researchers have coders label model responses; agreement between them."""
